// tsunagu's pages: draw each plotly figure the server put in a data-figure attribute, and call
// the API with the session's CSRF token.
"use strict";

const csrf = () => document.querySelector('meta[name="csrf-token"]')?.content || "";

function drawCharts(root = document) {
  for (const el of root.querySelectorAll("[data-figure]")) {
    const figure = JSON.parse(el.dataset.figure);
    Plotly.newPlot(el, figure.data, figure.layout, { displaylogo: false, responsive: true })
      .then(() => el.setAttribute("data-drawn", "1"));
  }
}

async function api(method, path, body) {
  const response = await fetch(path, {
    method,
    headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf() },
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "same-origin",
  });
  const answer = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(answer.message || response.statusText);
  return answer;
}

if (window.Plotly) drawCharts();
