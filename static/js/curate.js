// Curation page: the embedding map (hover preview, click to open, lasso to select),
// cluster selection and the quality histograms. Figures come from the server as JSON.
(function () {
  const ids = document.getElementById("image_ids");
  const clusterInput = document.getElementById("cluster_id");
  const count = document.getElementById("selection-count");
  const thumbs = document.getElementById("selection-thumbs");
  const button = document.getElementById("apply-button");
  const imagePath = (id) => window.location.pathname.replace(/datasets\/\d+\/curate\/?$/, `images/${id}/`);

  // The action form is there for reviewers and leads only; others still select to look.
  function setSelection(points, label) {
    if (clusterInput) clusterInput.value = "";
    if (ids) ids.value = points.map((p) => p[0]).join(",");
    count.textContent = points.length ? `${points.length} image${points.length === 1 ? "" : "s"} ${label}` : "nothing selected";
    thumbs.replaceChildren(...points.slice(0, 60).map((p) => {
      const a = document.createElement("a");
      a.href = imagePath(p[0]);
      a.title = p[3];
      const img = document.createElement("img");
      img.src = p[1];
      img.alt = p[3];
      img.loading = "lazy";
      a.append(img);
      return a;
    }));
    if (button) button.disabled = points.length === 0;
  }

  const figureData = document.getElementById("map-figure");
  if (figureData) {
    const figure = JSON.parse(figureData.textContent);
    const map = document.getElementById("map");
    const preview = document.getElementById("preview");
    Plotly.newPlot(map, figure.data, figure.layout, { responsive: true, displaylogo: false });
    map.on("plotly_hover", (event) => {
      const [, thumb, , name] = event.points[0].customdata;
      preview.querySelector("img").src = thumb;
      preview.querySelector(".cap").textContent = name;
      preview.hidden = false;
    });
    map.on("plotly_unhover", () => { preview.hidden = true; });
    map.on("plotly_click", (event) => { window.location.assign(imagePath(event.points[0].customdata[0])); });
    map.on("plotly_selected", (event) => {
      setSelection(event && event.points ? event.points.map((p) => p.customdata) : [], "selected on the map");
    });
    map.on("plotly_deselect", () => setSelection([], ""));
    window.studioMap = { select: setSelection };
  }

  document.querySelectorAll(".select-cluster").forEach((link) => {
    link.addEventListener("click", () => {
      setSelection([], "");
      if (clusterInput) clusterInput.value = link.dataset.cluster;
      count.textContent = `${link.dataset.size} images in ${link.dataset.name}`;
      if (button) button.disabled = false;
    });
  });

  const histograms = JSON.parse(document.getElementById("histograms-data").textContent);
  const grid = document.getElementById("histograms");
  if (histograms.length) document.getElementById("no-histograms").hidden = true;
  histograms.forEach((h) => {
    const div = document.createElement("div");
    div.id = h.id;
    grid.append(div);
    Plotly.newPlot(div, h.figure.data, h.figure.layout, { displayModeBar: false, responsive: true });
  });
})();
