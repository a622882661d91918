/* flask-jobmonitor: live refresh of job lists, job details and notifications. No dependencies. */
(function () {
  "use strict";
  if (window.jobmonitorLoaded) { return; }  /* the widget and the pages may both include this file */
  window.jobmonitorLoaded = true;

  var STORE_KEY = "jobmonitor.autoRefresh";
  var autoRefresh = localStorage.getItem(STORE_KEY) !== "off";

  function $(root, selector) { return root.querySelector(selector); }
  function $all(root, selector) { return Array.prototype.slice.call(root.querySelectorAll(selector)); }

  function formatSeconds(seconds) {
    if (seconds === null || seconds === undefined || isNaN(seconds)) { return "—"; }
    seconds = Math.max(0, Math.round(seconds));
    var h = Math.floor(seconds / 3600), m = Math.floor((seconds % 3600) / 60), s = seconds % 60;
    var pad = function (n) { return (n < 10 ? "0" : "") + n; };
    if (h) { return h + "h " + pad(m) + "m " + pad(s) + "s"; }
    if (m) { return m + "m " + pad(s) + "s"; }
    return s + "s";
  }

  function localTime(iso) {
    var date = new Date(iso);
    return isNaN(date) ? iso : date.toLocaleString();
  }

  function timeHtml(iso) {
    if (!iso) { return "—"; }
    return '<time data-utc="' + iso + '" title="' + iso + '">' + localTime(iso) + "</time>";
  }

  function escapeHtml(text) {
    var div = document.createElement("div");
    div.textContent = text === null || text === undefined ? "" : String(text);
    return div.innerHTML;
  }

  /* Times are rendered in UTC by the server; show them in the viewer's time zone. */
  function localizeTimes(root) {
    $all(root, "time[data-utc]").forEach(function (el) { el.textContent = localTime(el.getAttribute("data-utc")); });
  }

  /* Durations of running jobs grow every second without asking the server. */
  function tickDurations() {
    var now = Date.now();
    $all(document, "[data-jm-since]").forEach(function (el) {
      if (el.hasAttribute("data-jm-until")) { return; }
      el.textContent = formatSeconds((now - Date.parse(el.getAttribute("data-jm-since"))) / 1000);
    });
  }

  function setSpan(el, since, until, seconds) {
    if (!el) { return; }
    if (since) { el.setAttribute("data-jm-since", since); } else { el.removeAttribute("data-jm-since"); }
    if (until) { el.setAttribute("data-jm-until", until); } else { el.removeAttribute("data-jm-until"); }
    el.textContent = formatSeconds(seconds);
  }

  function renderStatus(el, job) {
    if (!el) { return; }
    el.className = "badge badge-" + job.status_colour + " jm-status";
    el.title = job.status_label;
    el.innerHTML = '<i class="fa fa-fw ' + job.status_icon + '"></i> <span data-jm="status-label">' +
      escapeHtml(job.status_label) + "</span>";
  }

  function renderProgress(el, job) {
    if (!el) { return; }
    var bar = $(el, '[data-jm="bar"]');
    var percent = job.percent;
    if (percent === null) { percent = job.status === "running" ? 100 : 0; }
    bar.style.width = percent + "%";
    bar.setAttribute("aria-valuenow", percent);
    bar.className = "progress-bar bg-" + job.status_colour +
      (job.status === "running" || job.status === "stopping" ? " progress-bar-striped progress-bar-animated" : "");
    var text = "";
    if (job.step_count) { text = "step " + (job.current_step || 0) + "/" + job.step_count; }
    if (job.progress_total) { text += " · " + job.progress_done + "/" + job.progress_total; }
    else if (job.progress_done) { text += " · " + job.progress_done; }
    $(el, '[data-jm="progress-text"]').textContent = text;
  }

  function renderEnded(el, job) {
    if (!el) { return; }
    if (job.ended_at) { el.innerHTML = timeHtml(job.ended_at); }
    else if (job.status === "running" || job.status === "stopping" || job.status === "paused") {
      el.innerHTML = '<em class="text-muted">Still in progress</em>';
    } else { el.textContent = "—"; }
  }

  /* Update every element of one job (a list row, a widget item or the detail header). */
  function applyJob(root, job) {
    renderStatus($(root, '[data-jm="status"]'), job);
    renderProgress($(root, '[data-jm="progress"]'), job);
    setSpan($(root, '[data-jm="duration"]'), job.started_at, job.ended_at, job.duration_seconds);
    setSpan($(root, '[data-jm="waiting"]'), job.created_at, job.started_at, job.waiting_seconds);
    var started = $(root, '[data-jm="started"]');
    if (started) { started.innerHTML = timeHtml(job.started_at); }
    renderEnded($(root, '[data-jm="ended"]'), job);
    var failed = $(root, '[data-jm="failed-at"]');
    if (failed) { failed.innerHTML = job.failed_at ? timeHtml(job.failed_at) : ""; }
    var children = $(root, '[data-jm="children"] a');
    if (children && job.children_total !== null) { children.textContent = job.children_done + "/" + job.children_total; }
    if (job.actions) {
      /* a button that no longer fits the job's status disappears (new ones come with a reload) */
      $all(root, "[data-jm-action-button]").forEach(function (button) {
        var fits = job.actions.indexOf(button.getAttribute("data-jm-action-button")) !== -1;
        button.closest("form").hidden = !fits;
      });
    }
    root.setAttribute("data-jm-active", job.active ? "true" : "false");
    if (root.className.indexOf("jm-row-") !== -1) {
      root.className = root.className.replace(/jm-row-\w+/, "jm-row-" + job.status);
    }
  }

  function getJson(url) {
    return fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (response) {
        if (!response.ok) { throw new Error("HTTP " + response.status); }
        return response.json();
      });
  }

  function markRefreshed(ok) {
    $all(document, '[data-jm="refreshed-at"]').forEach(function (el) {
      el.textContent = ok ? "updated " + new Date().toLocaleTimeString() : "refresh failed, retrying";
    });
  }

  /* A list of jobs (the process tracker table or the widget): refresh the rows still active. */
  function refreshList(container, everything) {
    var rows = $all(container, "[data-job-id]").filter(function (row) {
      return everything || row.getAttribute("data-jm-active") === "true";
    });
    if (!rows.length) { return Promise.resolve(); }
    var ids = rows.map(function (row) { return row.getAttribute("data-job-id"); });
    var url = container.getAttribute("data-jm-refresh-url") + "?ids=" + encodeURIComponent(ids.join(","));
    return getJson(url).then(function (data) {
      data.jobs.forEach(function (job) {
        rows.filter(function (row) { return row.getAttribute("data-job-id") === job.id; })
          .forEach(function (row) { applyJob(row, job); });
      });
      markRefreshed(true);
    }).catch(function () { markRefreshed(false); });
  }

  /* The detail page: header, steps, counts. */
  function refreshDetail(container) {
    return getJson(container.getAttribute("data-jm-detail-url")).then(function (job) {
      applyJob(container, job);
      var errorBox = $(container, '[data-jm="error-message"]');
      if (errorBox) {
        errorBox.hidden = !job.error_message;
        $(errorBox, '[data-jm="error-text"]').textContent = job.error_message || "";
      }
      var counts = $(container, '[data-jm="counts"]');
      if (counts) { counts.textContent = job.error_count + " / " + job.warning_count; }
      var timeLeft = $(container, '[data-jm="time-left"]');
      if (timeLeft) {
        timeLeft.textContent = job.remaining_text || "";
        $(container, '[data-jm="time-left-row"]').hidden = !job.remaining_text;
      }
      job.steps.forEach(function (step) {
        var row = $(container, '[data-step-position="' + step.position + '"]');
        if (!row) { return; }
        /* the look (colour, icon, label) comes with the JSON: presenters.step_look, as on first load */
        $(row, '[data-jm="step-status"]').innerHTML = '<span class="badge badge-' + escapeHtml(step.status_colour) +
          '" data-jm-step-status="' + escapeHtml(step.status) + '"><i class="fa fa-fw ' + escapeHtml(step.status_icon) +
          '"></i> ' + escapeHtml(step.status_label) + "</span>";
        $(row, '[data-jm="step-progress"]').textContent = step.done + (step.total ? "/" + step.total : "");
        $(row, '[data-jm="step-counters"]').innerHTML = Object.keys(step.counters).map(function (key) {
          return '<span class="mr-2">' + escapeHtml(key) + ": <strong>" + step.counters[key] + "</strong></span>";
        }).join("");
        var time = "";
        if (step.elapsed_seconds !== null) {
          time = formatSeconds(step.elapsed_seconds) + " elapsed";
          if (step.remaining_seconds !== null) { time += ", ~" + formatSeconds(step.remaining_seconds) + " left"; }
        } else if (step.estimated_seconds !== null) {
          time = '<span class="text-muted">usually ~' + formatSeconds(step.estimated_seconds) + "</span>";
        }
        $(row, '[data-jm="step-time"]').innerHTML = time;
      });
      var wasActive = container.getAttribute("data-jm-was-active") !== "false";
      container.setAttribute("data-jm-was-active", job.active ? "true" : "false");
      if (wasActive && !job.active) {
        /* it just ended: reload once so logs, subtasks and new files appear */
        window.location.reload();
      }
      markRefreshed(true);
    }).catch(function () { markRefreshed(false); });
  }

  function refreshAll(everything) {
    $all(document, "[data-jm-refresh-url]").forEach(function (el) { refreshList(el, everything); });
    var detail = document.getElementById("jm-detail");
    if (detail && (everything || detail.getAttribute("data-jm-active") === "true")) { refreshDetail(detail); }
  }

  function updateToggleButtons() {
    $all(document, '[data-jm-action="toggle-auto"]').forEach(function (button) {
      button.setAttribute("aria-pressed", autoRefresh ? "true" : "false");
      $(button, "i").className = "fa " + (autoRefresh ? "fa-pause" : "fa-play");
      $(button, "span").textContent = autoRefresh ? "Pause auto-refresh" : "Resume auto-refresh";
    });
  }

  /* Notifications: unread badge, a dropdown, and a toast for each one that arrives. */
  function startNotifications(menu) {
    var seenKey = "jobmonitor.lastToast";
    var lastSeen = parseInt(localStorage.getItem(seenKey) || "0", 10);
    var firstPoll = !localStorage.getItem(seenKey);
    var jobUrl = menu.getAttribute("data-jm-job-url");
    var toasts = document.querySelector(".jm-toasts");
    /* the words and colours are the server's (presenters.look, JOBMONITOR_STATUS_LABELS) */
    function label(item) { return item.status_label || item.event; }

    function toast(item) {
      if (!toasts) { return; }
      var colour = item.status_colour || "secondary";
      var el = document.createElement("div");
      el.className = "toast show border-" + colour;
      el.setAttribute("role", "status");
      el.innerHTML = '<div class="toast-header"><strong class="mr-auto text-' + colour + '">' +
        escapeHtml(label(item)) + '</strong><button type="button" class="ml-2 close" aria-label="Close">&times;</button></div>' +
        '<div class="toast-body">' + (jobUrl ? '<a href="' + jobUrl.replace("JOB_ID", item.job_id) + '">' +
        escapeHtml(item.job_name) + "</a>" : escapeHtml(item.job_name)) + "</div>";
      $(el, "button").addEventListener("click", function () { el.remove(); });
      toasts.appendChild(el);
      setTimeout(function () { el.remove(); }, 10000);
    }

    function poll() {
      return getJson(menu.getAttribute("data-jm-notifications-url")).then(function (data) {
        var badge = $(menu, '[data-jm="unread"]');
        badge.textContent = data.unread;
        badge.hidden = data.unread === 0;
        var list = $(menu, '[data-jm="notification-items"]');
        list.innerHTML = data.items.length ? data.items.map(function (item) {
          var text = escapeHtml(item.job_name) + ": " + escapeHtml(label(item));
          return jobUrl ? '<a class="dropdown-item small" data-jm-notification="' + item.id + '" href="' +
            jobUrl.replace("JOB_ID", item.job_id) + '">' + text + "</a>"
            : '<span class="dropdown-item-text small">' + text + "</span>";
        }).join("") : '<span class="dropdown-item-text text-muted small">No new notifications.</span>';
        var newest = data.items.length ? data.items[0].id : lastSeen;
        if (!firstPoll) {
          data.items.filter(function (item) { return item.id > lastSeen; }).reverse().forEach(toast);
        }
        firstPoll = false;
        lastSeen = Math.max(lastSeen, newest);
        localStorage.setItem(seenKey, String(lastSeen));
      }).catch(function () { /* the next poll tries again */ });
    }

    function markRead(ids) {
      return fetch(menu.getAttribute("data-jm-read-url"), {
        method: "POST", credentials: "same-origin", keepalive: true,
        headers: { "Content-Type": "application/json", "X-CSRFToken": menu.getAttribute("data-jm-csrf") },
        body: JSON.stringify({ ids: ids })
      });
    }
    $(menu, '[data-jm-action="mark-all-read"]').addEventListener("click", function () {
      markRead([]).then(poll);
    });
    /* opening a notification marks it read */
    $(menu, '[data-jm="notification-items"]').addEventListener("click", function (event) {
      var link = event.target.closest("[data-jm-notification]");
      if (link) { markRead([parseInt(link.getAttribute("data-jm-notification"), 10)]); }
    });
    poll();
    /* a tab nobody looks at does not poll; it catches up the moment it is shown again */
    setInterval(function () { if (!document.hidden) { poll(); } }, 1000 * parseFloat(menu.getAttribute("data-jm-interval") || "6"));
    document.addEventListener("visibilitychange", function () { if (!document.hidden) { poll(); } });
  }

  document.addEventListener("DOMContentLoaded", function () {
    localizeTimes(document);
    updateToggleButtons();
    $all(document, '[data-jm-action="refresh"]').forEach(function (button) {
      button.addEventListener("click", function () { refreshAll(true); });
    });
    $all(document, '[data-jm-action="toggle-auto"]').forEach(function (button) {
      button.addEventListener("click", function () {
        autoRefresh = !autoRefresh;
        localStorage.setItem(STORE_KEY, autoRefresh ? "on" : "off");
        updateToggleButtons();
      });
    });
    $all(document, "[data-jm-select-all]").forEach(function (box) {
      box.addEventListener("change", function () {
        $all(document, 'input[name="ids"][form="jm-bulk"]').forEach(function (item) { item.checked = box.checked; });
      });
    });
    /* the navbar bell carries its own (longer) interval and comes first in the page: skip it */
    var holder = document.querySelector("[data-jm-interval]:not([data-jm-notifications-url])");
    var interval = 1000 * parseFloat(holder ? holder.getAttribute("data-jm-interval") : "3");
    /* paused by the person, or a hidden tab (nobody sees it): no requests; shown again: refresh at once */
    setInterval(function () { if (autoRefresh && !document.hidden) { refreshAll(false); } }, interval);
    document.addEventListener("visibilitychange", function () {
      if (autoRefresh && !document.hidden) { refreshAll(false); }
    });
    setInterval(tickDurations, 1000);
    $all(document, "[data-jm-notifications-url]").forEach(startNotifications);
  });
})();
