// Draw the queue's quality figures, built on the server (annotation/charts.py).
document.addEventListener("DOMContentLoaded", () => {
  const source = document.getElementById("quality-figures");
  if (!source || typeof Plotly === "undefined") return;
  JSON.parse(source.textContent).forEach((f) => {
    Plotly.newPlot(f.id, f.figure.data, f.figure.layout, { displayModeBar: false, responsive: true });
  });
});
