// Draws each dashboard figure (a plotly JSON spec in a json_script tag) and sends a click on a
// bar to the records behind it (the bar's customdata URL).
document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("div.chart[data-figure]").forEach((div) => {
    const figure = JSON.parse(document.getElementById(div.dataset.figure).textContent);
    Plotly.newPlot(div, figure.data, figure.layout, {displaylogo: false, responsive: true}).then(() => {
      div.on("plotly_click", (event) => {
        const url = event.points[0].customdata;
        if (url) window.location.href = url;
      });
      div.dataset.ready = "yes";
    });
  });
});
