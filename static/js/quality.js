/* Draw the plotly figures a page passes as JSON (json_script id "quality-figures"). */
(function () {
  const source = document.getElementById("quality-figures");
  if (!source || !window.Plotly) return;
  JSON.parse(source.textContent).forEach((f) => {
    Plotly.newPlot(f.id, f.figure.data, f.figure.layout, { displayModeBar: false, responsive: true });
  });
})();
