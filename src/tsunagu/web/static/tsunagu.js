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

// A builder's rows (the funnel's steps): add one like the last, remove one (two stay).
function rows(list, add, most = 10, least = 2) {
  const items = () => list.querySelectorAll(":scope > li");
  const sync = () => {
    add.disabled = items().length >= most;
    for (const b of list.querySelectorAll(".remove")) b.disabled = items().length <= least;
  };
  add.addEventListener("click", () => {
    const last = items()[items().length - 1];
    const copy = last.cloneNode(true);
    for (const field of copy.querySelectorAll("input, select")) field.value = "";
    list.appendChild(copy);
    sync();
  });
  list.addEventListener("click", (event) => {
    const button = event.target.closest(".remove");
    if (button && items().length > least) button.closest("li").remove();
    sync();
  });
  sync();
}

if (window.Plotly) drawCharts();
const steps = document.getElementById("steps");
if (steps) rows(steps, document.getElementById("add-step"));
