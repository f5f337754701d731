// The segment builder: rows of rules made into a SegmentDefinition's rule (activation/segments.py),
// counted as they change (POST /v1/segments/preview, the latest answer wins) and saved by those
// who may (POST /v1/segments).
"use strict";

(() => {
  const form = document.getElementById("builder");
  if (!form) return;
  const list = document.getElementById("rules");
  const row = document.getElementById("rule-row");
  const live = document.getElementById("live");
  const count = document.getElementById("live-count");
  const state = document.getElementById("live-state");
  const sample = document.getElementById("live-sample");
  const save = document.getElementById("save-segment");
  const saveError = document.getElementById("save-error");
  const name = document.getElementById("seg-name");
  const words = document.getElementById("seg-words").dataset;
  const taken = new Set(JSON.parse(form.dataset.names || "[]"));
  const number = new Intl.NumberFormat("en-US");
  let asked = 0;
  let timer = null;
  let current = null;

  const whole = (text, least, most) => {
    if (!/^\d+$/.test(text.trim())) return null;
    const n = Number(text);
    return n >= least && n <= most ? n : null;
  };
  const field = (li, selector) => li.querySelector(selector);

  function show(li) {
    const kind = field(li, ".rule-kind").value;
    for (const part of li.querySelectorAll(".part")) {
      part.hidden = !part.dataset.for.split(" ").includes(kind);
    }
    const trait = field(li, '[name="trait"]');
    const type = trait.selectedOptions[0]?.dataset.type || "number";
    for (const el of li.querySelectorAll("[data-type]")) {
      el.hidden = !el.dataset.type.split(" ").includes(type);
    }
    const value = field(li, '[name="value"]');
    value.type = type === "text" ? "text" : "number";
    value.placeholder = type === "moment" ? "30" : "";
  }

  // One row's rule, or null while it is incomplete.
  function ruleOf(li) {
    const kind = field(li, ".rule-kind").value;
    if (kind === "trait") {
      const trait = field(li, '[name="trait"]');
      const type = trait.selectedOptions[0].dataset.type;
      if (type === "store") return { trait: trait.value, eq: field(li, '[name="store_value"]').value };
      const op = field(li, `[name="op"][data-type="${type}"]`).value;
      const text = field(li, '[name="value"]').value.trim();
      if (type === "moment") {
        const days = whole(text, 1, 36500);
        return days === null ? null : { trait: trait.value, [op]: `${days}d` };
      }
      if (type === "number") {
        const n = text === "" ? NaN : Number(text);
        return Number.isFinite(n) ? { trait: trait.value, [op]: n } : null;
      }
      return text ? { trait: trait.value, [op]: text } : null;
    }
    if (kind === "event" || kind === "no_event") {
      const event = { event: field(li, '[name="event"]').value };
      const channel = field(li, '[name="channel"]').value;
      if (channel) event.channel = channel;
      const daysText = field(li, '[name="days"]').value;
      if (daysText.trim() !== "") {
        const days = whole(daysText, 1, 36500);
        if (days === null) return null;
        event.within = `${days}d`;
      }
      const times = whole(field(li, '[name="times"]').value, 1, 1000000);
      if (times === null) return null;
      event.at_least = times;
      return kind === "event" ? event : { not: event };
    }
    if (kind === "consent") return { consent: field(li, '[name="consent"]').value };
    const km = Number(field(li, '[name="km"]').value);
    if (!(km > 0 && km <= 1000)) return null;
    return { near_store: field(li, '[name="store"]').value, km, by: field(li, '[name="by"]').value };
  }

  function ruleOfAll() {
    const rules = [...list.children].map(ruleOf);
    if (!rules.length || rules.includes(null)) return null;
    return { [document.getElementById("seg-combine").value]: rules };
  }

  function canSave() {
    if (!save) return;
    const wanted = name.value.trim();
    let why = "";
    if (wanted && taken.has(wanted)) why = words.taken;
    saveError.textContent = why;
    saveError.hidden = !why;
    save.disabled = !current || !wanted || !!why;
  }

  async function recount() {
    const rule = current;
    const mine = ++asked;
    state.textContent = words.counting;
    try {
      const answer = await api("POST", "/v1/segments/preview", { rule, sample: 5 });
      if (mine !== asked) return;
      count.textContent = number.format(answer.customers);
      live.dataset.count = String(answer.customers);
      live.dataset.rule = JSON.stringify(rule);
      live.dataset.state = "done";
      state.textContent = `${answer.seconds.toFixed(2)} ${words.seconds}`;
      sample.replaceChildren(...answer.sample.map((m) => {
        const item = document.createElement("li");
        item.textContent = [m.member_id || m.profile_id, m.name].filter(Boolean).join(" · ");
        return item;
      }));
    } catch (error) {
      if (mine !== asked) return;
      live.dataset.state = "error";
      state.textContent = error.message;
    }
  }

  function changed() {
    current = ruleOfAll();
    canSave();
    clearTimeout(timer);
    asked++;  // an answer still on its way is for rules that changed since
    if (!current) {
      live.dataset.state = "incomplete";
      live.classList.add("stale");
      state.textContent = words.incomplete;
      return;
    }
    live.dataset.state = "pending";
    live.classList.remove("stale");
    timer = setTimeout(recount, 300);
  }

  function add(kind = "event") {
    const li = row.content.firstElementChild.cloneNode(true);
    field(li, ".rule-kind").value = kind;
    const event = field(li, '[name="event"]');
    if ([...event.options].some((o) => o.value === "Order Completed")) event.value = "Order Completed";
    list.appendChild(li);
    show(li);
    return li;
  }

  list.addEventListener("change", (event) => {
    const li = event.target.closest("li.rule");
    if (li) show(li);
  });
  list.addEventListener("click", (event) => {
    const button = event.target.closest(".remove");
    if (!button || list.children.length <= 1) return;
    button.closest("li.rule").remove();
    changed();
  });
  form.addEventListener("input", changed);
  form.addEventListener("change", changed);
  document.getElementById("add-rule").addEventListener("click", () => {
    add("trait");
    changed();
  });
  if (save) {
    save.addEventListener("click", async () => {
      const wanted = name.value.trim();
      if (!wanted) {
        saveError.textContent = words.nameNeeded;
        saveError.hidden = false;
        return;
      }
      if (!current) return;
      save.disabled = true;
      const body = { name: wanted, rule: current };
      const description = document.getElementById("seg-description").value.trim();
      if (description) body.description = description;
      try {
        const made = await api("POST", "/v1/segments", body);
        location.href = `/segments?saved=${encodeURIComponent(made.segment_id)}`;
      } catch (error) {
        saveError.textContent = error.message;
        saveError.hidden = false;
        save.disabled = false;
      }
    });
  }
  add("event");
  changed();
})();
