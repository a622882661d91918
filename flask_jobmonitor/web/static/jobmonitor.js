/* flask-jobmonitor: live refresh of job lists, job details and notifications. No dependencies.

   The markup of a job's parts comes from the server only: the live refresh answers carry them
   rendered by the macros that rendered the page (presenters.py), and this script swaps each
   element for its fresh copy. It builds no job markup of its own; it only ticks the running
   durations and the "2 min ago" times between refreshes. */
(function () {
  "use strict";
  if (window.jobmonitorLoaded) { return; }  /* the widget and the pages may both include this file */
  window.jobmonitorLoaded = true;

  var STORE_KEY = "jobmonitor.autoRefresh";
  var autoRefresh = localStorage.getItem(STORE_KEY) !== "off";

  function $(root, selector) { return root.querySelector(selector); }

  /* The words this script writes, in the page's language: the server's JSON block
     (templating.script_texts); English if a host page renders the script without it. */
  var TEXTS = (function () {
    var english = {
      lang: "en", justNow: "just now", updated: "updated %(time)s", refreshFailed: "refresh failed, retrying",
      pauseAuto: "Pause auto-refresh", resumeAuto: "Resume auto-refresh", close: "Close",
      noNotifications: "No new notifications.", allChildren: "All the child jobs", jobEnded: "%(name)s: %(status)s",
      noSuchUser: "No user called \u201c%(name)s\u201d has run a job: choose one from the list.", newJobs: null
    };
    var block = document.getElementById("jm-texts");
    if (!block) { return english; }
    try { return Object.assign(english, JSON.parse(block.textContent)); } catch (error) { return english; }
  })();

  /* The page's language for screen readers and the browser's own words: Flask-Admin's layout
     writes <html> without lang and with no block to set it; a host page that says its own
     language keeps it. */
  if (!document.documentElement.getAttribute("lang")) { document.documentElement.setAttribute("lang", TEXTS.lang); }

  /* "%(name)s" placeholders filled, as the server's gettext does. */
  function fill(text, values) {
    return text.replace(/%\((\w+)\)s/g, function (whole, name) { return name in values ? values[name] : whole; });
  }

  function newJobsText(count) {
    var texts = TEXTS.newJobs;
    if (texts) { return texts[Math.min(count, texts.length - 1)]; }
    return count >= 50 ? "50 or more new jobs: show them" : count + (count === 1 ? " new job: show it" : " new jobs: show them");
  }
  function $all(root, selector) { return Array.prototype.slice.call(root.querySelectorAll(selector)); }

  /* The same format as the server's jm_seconds filter, to tick a running duration between refreshes. */
  function formatSeconds(seconds) {
    if (seconds === null || seconds === undefined || isNaN(seconds)) { return "—"; }
    seconds = Math.max(0, Math.round(seconds));
    var h = Math.floor(seconds / 3600), m = Math.floor((seconds % 3600) / 60), s = seconds % 60;
    var pad = function (n) { return (n < 10 ? "0" : "") + n; };
    if (h) { return h + "h " + pad(m) + "m " + pad(s) + "s"; }
    if (m) { return m + "m " + pad(s) + "s"; }
    return s + "s";
  }

  function escapeHtml(text) {
    var div = document.createElement("div");
    div.textContent = text === null || text === undefined ? "" : String(text);
    return div.innerHTML;
  }

  /* "2 min. ago" in the page's language: the browser's CLDR words, as Babel's on the server
     (presenters.ago, i18n.format_ago). */
  var relative = null;
  try { relative = new Intl.RelativeTimeFormat(TEXTS.lang, { style: "short", numeric: "always" }); } catch (error) { relative = null; }
  function ago(iso) {
    var seconds = Math.max(0, Math.floor((Date.now() - Date.parse(iso)) / 1000));
    if (isNaN(seconds)) { return iso; }
    if (seconds < 10) { return TEXTS.justNow; }
    /* i18n.AGO_UNITS: the largest unit that fits once, counted down */
    var units = [[31536000, "year"], [2592000, "month"], [604800, "week"], [86400, "day"], [3600, "hour"], [60, "minute"], [1, "second"]];
    for (var i = 0; i < units.length; i++) {
      if (seconds >= units[i][0]) {
        var count = Math.floor(seconds / units[i][0]);
        if (relative) { return relative.format(-count, units[i][1]); }
        return count + " " + units[i][1] + (count === 1 ? "" : "s") + " ago";
      }
    }
    return TEXTS.justNow;
  }

  /* Times come from the server already in the viewer's zone and language (presenters.local_time,
     i18n.format_local_time); the script only keeps the relative ones ("2 min. ago") fresh. */
  function localizeTimes(root) {
    $all(root, "time[data-jm-ago]").forEach(function (el) { el.textContent = ago(el.getAttribute("data-utc")); });
  }

  function tickAgo() {
    $all(document, "time[data-jm-ago]").forEach(function (el) { el.textContent = ago(el.getAttribute("data-utc")); });
  }

  /* Durations of running jobs grow every second without asking the server. */
  function tickDurations() {
    var now = Date.now();
    $all(document, "[data-jm-since]").forEach(function (el) {
      if (el.hasAttribute("data-jm-until")) { return; }
      el.textContent = formatSeconds((now - Date.parse(el.getAttribute("data-jm-since"))) / 1000);
    });
  }

  /* One element of the server's markup (a <td> or <tr> too: a <template> parses any element). */
  function parseFragment(html) {
    var holder = document.createElement("template");
    holder.innerHTML = html.trim();
    return holder.content.firstElementChild;
  }

  /* Swap each part of ``root`` named in ``parts`` ({data-jm name: server-rendered element});
     ``root`` may be a part itself (a widget item). */
  function swapParts(root, parts) {
    Object.keys(parts || {}).forEach(function (name) {
      var selector = '[data-jm="' + name + '"]';
      var old = root.matches(selector) ? root : $(root, selector);
      var fresh = old && parseFragment(parts[name]);
      if (fresh) {
        old.replaceWith(fresh);
        localizeTimes(fresh);
      }
    });
  }

  /* The names of the parts the jobs' elements show (their outermost data-jm elements), for the
     html= of /api/jobs: the server renders only those. */
  function partNames(rows) {
    var names = [];
    rows.forEach(function (row) {
      if (row.hasAttribute("data-jm")) {
        if (names.indexOf(row.getAttribute("data-jm")) === -1) { names.push(row.getAttribute("data-jm")); }
        return;
      }
      $all(row, "[data-jm]").forEach(function (el) {
        for (var up = el.parentElement; up && up !== row; up = up.parentElement) {
          if (up.hasAttribute("data-jm")) { return; }
        }
        var name = el.getAttribute("data-jm");
        if (names.indexOf(name) === -1) { names.push(name); }
      });
    });
    return names;
  }

  /* The buttons of a job follow the actions the server says this user may take now: the
     ones that no longer apply go, the ones that newly apply are cloned from the page's
     server-rendered button templates (jm.action_templates), so the markup has one source. */
  function renderActions(root, job) {
    var box = $(root, '[data-jm="actions"]');
    if (!box) { return; }
    var offer = box.getAttribute("data-jm-offer");
    var wanted = job.actions.filter(function (name) { return !offer || offer.split(",").indexOf(name) !== -1; });
    var templates = document.querySelector("template[data-jm-action-templates]");
    $all(box, "[data-jm-action-button]").forEach(function (button) {
      if (wanted.indexOf(button.getAttribute("data-jm-action-button")) === -1) {
        if (templates) { button.closest("form").remove(); } else { button.closest("form").hidden = true; }
      }
    });
    if (!templates) { return; }
    wanted.forEach(function (name, position) {
      var present = $(box, '[data-jm-action-button="' + name + '"]');
      var form = present ? present.closest("form") : null;
      if (!form) {
        var source = templates.content.querySelector('[data-jm-action-button="' + name + '"]');
        if (!source) { return; }
        form = source.closest("form").cloneNode(true);
        form.setAttribute("action", form.getAttribute("action").replace("JOB_ID", job.id));
      }
      form.hidden = false;
      var forms = $all(box, "form.jm-action");
      if (forms[position] !== form) { box.insertBefore(form, forms[position] || null); }
    });
  }

  /* Update every element of one job (a widget item, a host page's job or the detail page). */
  function applyJob(root, job) {
    var link = $(root, "a[href]");  /* the job's name, before the parts are swapped */
    if (root.getAttribute("data-jm-active") === "true" && !job.active && root.id !== "jm-detail" && link) {
      announce(endOf(link.textContent, job.status_label));
    }
    swapParts(root, job.html);
    if (!root.isConnected) { return; }  /* the whole element came from the server */
    if (job.actions) { renderActions(root, job); }
    root.setAttribute("data-jm-active", job.active ? "true" : "false");
  }

  /* This page as the server names it in the buttons it renders (Flask's request.full_path). */
  function pagePath() {
    return window.location.pathname + "?" + window.location.search.replace(/^\?/, "");
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
      el.textContent = ok ? fill(TEXTS.updated, { time: new Date().toLocaleTimeString(TEXTS.lang) }) : TEXTS.refreshFailed;
    });
  }

  /* The job list: its rows come back rendered by the server's own row macro and are swapped
     in place, keeping the person's ticked boxes, open families and keyboard focus. New jobs
     that match the list's filters are announced in a bar ("2 new jobs") and inserted on a
     click or a press of Refresh, so rows never move under the pointer on their own. */
  function rowsUrl(list, params) {
    var url = list.getAttribute("data-jm-rows-url");
    var query = Object.keys(params).map(function (key) {
      return encodeURIComponent(key) + "=" + encodeURIComponent(params[key]);
    }).join("&");
    return url + (url.indexOf("?") === -1 ? "?" : "&") + query;
  }

  function parseRows(html) {
    var holder = document.createElement("tbody");
    holder.innerHTML = html;
    return $all(holder, "tr[data-job-id]");
  }

  function focusKey(row) {
    var active = document.activeElement;
    if (!active || !row.contains(active)) { return null; }
    if (active.hasAttribute("data-jm-action-button")) { return '[data-jm-action-button="' + active.getAttribute("data-jm-action-button") + '"]'; }
    if (active.name === "ids") { return 'input[name="ids"]'; }
    if (active.hasAttribute("data-jm-family")) { return "[data-jm-family]"; }
    if (active.getAttribute("href")) { return 'a[href="' + CSS.escape(active.getAttribute("href")) + '"]'; }
    return null;
  }

  /* A job's end, said by screen readers (politely, once): "Import products.csv: Completed".
     The live region is in the page from its start (a region added with its text is not read). */
  var ANNOUNCE_KEY = "jobmonitor.announce";

  function announcer() {
    var region = document.querySelector('[data-jm="announcer"]');
    if (!region) {
      region = document.createElement("div");
      region.className = "sr-only";
      region.setAttribute("aria-live", "polite");
      region.setAttribute("data-jm", "announcer");
      document.body.appendChild(region);
    }
    return region;
  }

  function announce(text) {
    if (text) { announcer().textContent = text; }
  }

  function endOf(name, label) {
    return fill(TEXTS.jobEnded, { name: (name || "").trim(), status: (label || "").trim() });
  }

  function statusLabel(element) {
    var label = element && $(element, '[data-jm="status-label"]');
    return label ? label.textContent : "";
  }

  function swapRow(old, fresh) {
    if (old.getAttribute("data-jm-active") === "true" && fresh.getAttribute("data-jm-active") === "false") {
      var name = $(fresh, ".jm-name a");
      announce(endOf(name && name.textContent, statusLabel(fresh)));
    }
    var box = $(old, 'input[name="ids"]'), newBox = $(fresh, 'input[name="ids"]');
    if (box && newBox) { newBox.checked = box.checked; }
    var toggle = $(old, "[data-jm-family]"), newToggle = $(fresh, "[data-jm-family]");
    if (toggle && newToggle) { setExpanded(newToggle, toggle.getAttribute("aria-expanded") === "true"); }
    if (old.hasAttribute("data-jm-expanded-from")) {
      fresh.setAttribute("data-jm-expanded-from", old.getAttribute("data-jm-expanded-from"));
    }
    var key = focusKey(old);
    old.replaceWith(fresh);
    localizeTimes(fresh);
    if (key) {
      /* a button that no longer applies (Stop of an ended job): the row's tick box keeps the focus */
      var target = $(fresh, key) || $(fresh, 'input[name="ids"]');
      if (target) { target.focus({ preventScroll: true }); }
    }
  }

  function setExpanded(toggle, expanded) {
    toggle.setAttribute("aria-expanded", expanded ? "true" : "false");
    var icon = $(toggle, "i");
    if (icon) { icon.className = "fa " + (expanded ? "fa-caret-down" : "fa-caret-right"); }
  }

  function showNewBar(list) {
    var bar = $(list, '[data-jm="new-jobs"]');
    if (!bar) { return; }
    var count = (list.jmPending || []).length;
    bar.hidden = count === 0;
    $(bar, '[data-jm="new-count"]').textContent = newJobsText(count);
  }

  function insertNew(list) {
    var pending = list.jmPending || [];
    if (!pending.length) { return; }
    var body = $(list, "table.jm-table tbody");
    var empty = $(body, '[data-jm="empty"]');
    if (empty) { empty.remove(); }
    var first = body.firstElementChild;
    pending.forEach(function (row) {
      if ($(body, 'tr[data-job-id="' + row.getAttribute("data-job-id") + '"]')) { return; }
      row.classList.add("jm-new-row");
      body.insertBefore(row, first);
      localizeTimes(row);
    });
    list.setAttribute("data-jm-newest", list.jmPendingNewest);
    list.jmPending = [];
    showNewBar(list);
  }

  /* Every ENDED_EVERY-th refresh asks for the ended rows too: someone else may have resumed,
     restarted or deleted one, and its buttons must follow. */
  var ENDED_EVERY = 5;

  function refreshRows(list, everything) {
    list.jmTicks = (list.jmTicks || 0) + 1;
    var allRows = everything || list.jmTicks % ENDED_EVERY === 0;
    var rows = $all(list, "tbody tr[data-job-id]").filter(function (row) {
      return allRows || row.getAttribute("data-jm-active") === "true";
    });
    var ids = rows.map(function (row) { return row.getAttribute("data-job-id"); })
      .filter(function (id, index, all) { return all.indexOf(id) === index; });
    var newest = list.getAttribute("data-jm-newest");
    if (!ids.length && newest === null) { return Promise.resolve(); }
    var params = { ids: ids.join(","), next: window.location.pathname + window.location.search };
    if (newest !== null) { params.since = newest || "00010101T000000.000000_0"; }
    return getJson(rowsUrl(list, params)).then(function (data) {
      var fresh = {};
      parseRows(data.html).forEach(function (row) { fresh[row.getAttribute("data-job-id")] = row; });
      rows.forEach(function (row) {
        var replacement = fresh[row.getAttribute("data-job-id")];
        if (replacement && row.isConnected) { swapRow(row, replacement.cloneNode(true)); }
      });
      data.gone.forEach(function (id) {
        $all(list, 'tbody tr[data-job-id="' + id + '"]').forEach(function (row) { row.remove(); });
      });
      if (newest !== null) {
        /* the jobs announced are those the page does not show yet (a job that committed late
           comes back with the ones just before the newest, see listing.late_ids) */
        list.jmPending = parseRows(data.new_html).filter(function (row) {
          return !$(list, 'tbody tr[data-job-id="' + row.getAttribute("data-job-id") + '"]');
        });
        list.jmPendingNewest = data.newest || newest;
        if (everything) { insertNew(list); } else { showNewBar(list); }
      }
      markRefreshed(true);
    }).catch(function () { markRefreshed(false); });
  }

  /* A parent's children, shown under it (rendered by the same row macro), or hidden again. */
  function toggleFamily(toggle) {
    var list = toggle.closest("#jm-list");
    var parentId = toggle.getAttribute("data-jm-family");
    var row = toggle.closest("tr");
    if (toggle.getAttribute("aria-expanded") === "true") {
      $all(list, 'tr[data-jm-expanded-from="' + parentId + '"]').forEach(function (child) { child.remove(); });
      setExpanded(toggle, false);
      return Promise.resolve();
    }
    setExpanded(toggle, true);
    var params = { parent: parentId, family: "1", next: window.location.pathname + window.location.search };
    var base = list.getAttribute("data-jm-rows-url");
    var url = base.split("?")[0];
    /* a system job's children are system jobs: keep the list's "system jobs shown" */
    var system = /[?&]system=([^&]*)/.exec(base);
    if (system) { params.system = decodeURIComponent(system[1]); }
    return getJson(url + "?" + Object.keys(params).map(function (key) {
      return key + "=" + encodeURIComponent(params[key]);
    }).join("&")).then(function (data) {
      var after = row;
      parseRows(data.children_html).forEach(function (child) {
        child.setAttribute("data-jm-expanded-from", parentId);
        after.after(child);
        localizeTimes(child);
        after = child;
      });
      if (data.children_more) {  /* a big family: the rest on the parent's own list */
        var more = document.createElement("tr");
        more.setAttribute("data-jm-expanded-from", parentId);
        more.className = "jm-child-row";
        more.innerHTML = '<td colspan="' + row.children.length + '" class="small"></td>';
        var link = $(row, 'a[href*="parent="]');
        if (link) { more.firstChild.innerHTML = '<a href="' + link.getAttribute("href") + '">' + escapeHtml(TEXTS.allChildren) + "</a>"; }
        after.after(more);
      }
    }).catch(function () { setExpanded(toggle, false); });
  }

  /* A list of jobs on a host page or the "My jobs" widget: refresh the jobs still active. */
  function refreshList(container, everything) {
    var rows = $all(container, "[data-job-id]").filter(function (row) {
      return everything || row.getAttribute("data-jm-active") === "true";
    });
    if (!rows.length) { return Promise.resolve(); }
    var ids = rows.map(function (row) { return row.getAttribute("data-job-id"); });
    var url = container.getAttribute("data-jm-refresh-url") + "?ids=" + encodeURIComponent(ids.join(",")) +
      "&html=" + encodeURIComponent(partNames(rows).join(",")) +
      "&next=" + encodeURIComponent(pagePath());
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
      var steps = $(container, '[data-jm="steps"] tbody');
      job.steps.forEach(function (step) {
        var row = $(container, '[data-step-position="' + step.position + '"]');
        var fresh = parseFragment(step.html);
        if (row) { row.replaceWith(fresh); } else if (steps) {  /* a step the task did not declare */
          var none = $(steps, '[data-jm="no-steps"]');
          if (none) { none.remove(); }
          steps.appendChild(fresh);
        }
      });
      var wasActive = container.getAttribute("data-jm-was-active") !== "false";
      container.setAttribute("data-jm-was-active", job.active ? "true" : "false");
      if (wasActive && !job.active) {
        /* it just ended: reload once so logs, subtasks and new files appear; the reloaded page
           says the end (sessionStorage) */
        var name = $(container, '.breadcrumb-item[aria-current="page"]');
        sessionStorage.setItem(ANNOUNCE_KEY, endOf(name ? name.textContent : "", job.status_label));
        window.location.reload();
      }
      markRefreshed(true);
    }).catch(function () { markRefreshed(false); });
  }

  /* A page that is read again whole (the queues' health): while the automatic refresh is on
     and the person is not in one of its controls, or at once by its Refresh button. */
  function reloadPage(everything) {
    if (!document.querySelector("[data-jm-reload]")) { return; }
    var active = document.activeElement;
    if (everything || !active || active === document.body) { window.location.reload(); }
  }

  function refreshAll(everything) {
    if (everything) { reloadPage(true); }
    $all(document, "[data-jm-refresh-url]").forEach(function (el) { refreshList(el, everything); });
    $all(document, "[data-jm-rows-url]").forEach(function (el) { refreshRows(el, everything); });
    var detail = document.getElementById("jm-detail");
    if (detail && (everything || detail.getAttribute("data-jm-active") === "true")) { refreshDetail(detail); }
  }

  function updateToggleButtons() {
    $all(document, '[data-jm-action="toggle-auto"]').forEach(function (button) {
      button.setAttribute("aria-pressed", autoRefresh ? "true" : "false");
      $(button, "i").className = "fa " + (autoRefresh ? "fa-pause" : "fa-play");
      $(button, "span").textContent = autoRefresh ? TEXTS.pauseAuto : TEXTS.resumeAuto;
    });
  }

  var TOASTS_KEY = "jobmonitor.toasts";
  var TOAST_MS = 10000;

  /* Notifications: unread badge, a dropdown, and a toast for each one that arrives. */
  function startNotifications(menu) {
    var seenKey = "jobmonitor.lastToast";
    var lastSeen = parseInt(localStorage.getItem(seenKey) || "0", 10);
    var firstPoll = !localStorage.getItem(seenKey);
    var jobUrl = menu.getAttribute("data-jm-job-url");
    var toasts = document.querySelector(".jm-toasts");
    /* the words and colours are the server's (presenters.look, JOBMONITOR_STATUS_LABELS) */
    function label(item) { return item.status_label || item.event; }

    /* A toast stays until closed or for TOAST_MS, across the page's own reloads (the detail
       page reloads itself when its job ends): shown toasts are kept in sessionStorage. */
    function keptToasts() {
      try { return JSON.parse(sessionStorage.getItem(TOASTS_KEY) || "[]"); } catch (error) { return []; }
    }
    function keepToasts(kept) { sessionStorage.setItem(TOASTS_KEY, JSON.stringify(kept)); }
    function forget(id) { keepToasts(keptToasts().filter(function (entry) { return entry.item.id !== id; })); }

    function toast(item, until) {
      if (!toasts || $(toasts, '[data-jm-toast="' + item.id + '"]')) { return; }
      if (until === undefined) {
        until = Date.now() + TOAST_MS;
        keepToasts(keptToasts().concat([{ item: item, until: until }]));
      }
      var colour = item.status_colour || "secondary";
      var el = document.createElement("div");
      el.className = "toast show border-" + colour;
      el.setAttribute("role", "status");
      el.setAttribute("data-jm-toast", item.id);
      /* one line in the menu bar: "Completed  Import products.csv  x" */
      el.innerHTML = '<strong class="toast-header text-' + colour + '">' + escapeHtml(label(item)) + "</strong>" +
        '<span class="toast-body">' + (jobUrl ? '<a href="' + jobUrl.replace("JOB_ID", item.job_id) + '">' +
        escapeHtml(item.job_name) + "</a>" : escapeHtml(item.job_name)) + "</span>" +
        '<button type="button" class="close px-2" aria-label="' + escapeHtml(TEXTS.close) + '">&times;</button>';
      var close = function () { el.remove(); forget(item.id); };
      $(el, "button").addEventListener("click", close);
      toasts.appendChild(el);
      setTimeout(close, Math.max(0, until - Date.now()));
    }

    keptToasts().forEach(function (entry) {
      if (entry.until > Date.now()) { toast(entry.item, entry.until); } else { forget(entry.item.id); }
    });
    /* opening the bell shows the same news: the toasts go, and never cover its list */
    var bell = $(menu, "#jm-bell");
    if (bell) {
      bell.addEventListener("click", function () {
        $all(toasts || document.createElement("div"), "[data-jm-toast]").forEach(function (el) { el.remove(); });
        keepToasts([]);
      });
    }

    function poll() {
      return getJson(menu.getAttribute("data-jm-notifications-url")).then(function (data) {
        var badge = $(menu, '[data-jm="unread"]');
        badge.textContent = data.unread;
        badge.hidden = data.unread === 0;
        var list = $(menu, '[data-jm="notification-items"]');
        list.innerHTML = data.items.length ? data.items.map(function (item) {
          var text = escapeHtml(fill(TEXTS.jobEnded, { name: item.job_name, status: label(item) }));
          return jobUrl ? '<a class="dropdown-item small" data-jm-notification="' + item.id + '" href="' +
            jobUrl.replace("JOB_ID", item.job_id) + '">' + text + "</a>"
            : '<span class="dropdown-item-text small">' + text + "</span>";
        }).join("") : '<span class="dropdown-item-text text-muted small">' + escapeHtml(TEXTS.noNotifications) + "</span>";
        var newest = data.items.length ? data.items[0].id : lastSeen;
        if (!firstPoll) {
          data.items.filter(function (item) { return item.id > lastSeen; }).reverse().forEach(function (item) { toast(item); });
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
        body: JSON.stringify(ids ? { ids: ids } : {})  /* no ids: all of the user's (an empty list marks none) */
      });
    }
    $(menu, '[data-jm-action="mark-all-read"]').addEventListener("click", function () {
      markRead(null).then(poll);
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

  /* "Stop this job?": a form or a submit button with data-jm-confirm asks before it is sent.
     Listened to on the document, so buttons the live refresh adds ask too; the pages have no
     onsubmit/onclick of their own, which their Content-Security-Policy would refuse. */
  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("button[data-jm-confirm], input[data-jm-confirm]");
    if (button && !window.confirm(button.getAttribute("data-jm-confirm"))) { event.preventDefault(); }
  });
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form.hasAttribute("data-jm-confirm") && !window.confirm(form.getAttribute("data-jm-confirm"))) {
      event.preventDefault();
    }
  });

  /* Flask-Admin's menu categories are toggles with href="javascript:void(0)" whose click its
     script does not cancel: the browser would follow the address, which the policy refuses
     (a reported violation). Cancelled here, before any handler (capture); the menu still opens. */
  document.addEventListener("click", function (event) {
    var link = event.target.closest && event.target.closest('a[data-toggle="dropdown"][href^="javascript:"]');
    if (link) { event.preventDefault(); }
  }, true);

  /* The bell by keyboard. Flask-Admin loads two Bootstrap dropdown scripts (bootstrap.min.js
     4.6 and its vendor dropdown.js 4.3): both toggle the menu on a key, so Escape closed it and
     opened it again, and Space did nothing. Here, before them (capture): Space on the bell opens
     or closes it as a click does, Escape in it closes it and gives the focus back to the bell. */
  document.addEventListener("keydown", function (event) {
    var bell = event.target.closest && event.target.closest(".jm-notifications");
    if (!bell || (event.key !== "Escape" && !(event.key === " " && event.target.id === "jm-bell"))) { return; }
    var toggle = $(bell, "#jm-bell");
    var open = $(bell, ".dropdown-menu.show");
    if (event.key === "Escape" && !open) { return; }
    event.preventDefault();
    event.stopImmediatePropagation();
    if (event.key === " ") { toggle.click(); return; }
    if (window.jQuery && window.jQuery.fn.dropdown) {
      window.jQuery(toggle).dropdown("hide");
    } else {
      open.classList.remove("show");
      open.parentElement.classList.remove("show");
    }
    toggle.setAttribute("aria-expanded", "false");
    toggle.focus();
  }, true);

  /* Flask-Admin writes the close button of its flash messages with aria-hidden="true": a button a
     keyboard reaches but screen readers are told is not there (axe: aria-hidden-focus). Name it
     instead, and hide only its "x". */
  function nameFlashCloseButtons(root) {
    $all(root, '.alert > button.close[aria-hidden="true"]').forEach(function (button) {
      button.removeAttribute("aria-hidden");
      button.setAttribute("aria-label", TEXTS.close);
      button.innerHTML = '<span aria-hidden="true">&times;</span>';
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    nameFlashCloseButtons(document);
    localizeTimes(document);
    var said = sessionStorage.getItem(ANNOUNCE_KEY);
    announcer();
    if (said) {
      sessionStorage.removeItem(ANNOUNCE_KEY);
      /* filled once the region is in the page, so it is read as news */
      setTimeout(function () { announce(said); }, 250);
    }
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
    $all(document, "[data-jm-reload]").forEach(function (page) {
      var every = 1000 * parseFloat(page.getAttribute("data-jm-reload"));
      setInterval(function () { if (autoRefresh && !document.hidden) { reloadPage(false); } }, every);
    });
    document.addEventListener("visibilitychange", function () {
      if (autoRefresh && !document.hidden) { refreshAll(false); }
    });
    setInterval(function () { tickDurations(); tickAgo(); }, 1000);
    $all(document, "#jm-list").forEach(function (list) {
      list.addEventListener("click", function (event) {
        var toggle = event.target.closest("[data-jm-family]");
        if (toggle) { event.preventDefault(); toggleFamily(toggle); }
        if (event.target.closest('[data-jm-action="show-new"]')) { insertNew(list); }
      });
    });
    /* the user picker shows names and sends the id: a label from the list (or an id) becomes
       its id; anything else is refused here, said at the field, when the list holds every user
       who ran a job (data-jm-complete); else it is sent as an id, and the server says whether
       such a user ran a job */
    $all(document, "[data-jm-user-picker]").forEach(function (picker) {
      picker.addEventListener("input", function () { picker.setCustomValidity(""); });
      picker.form.addEventListener("submit", function (event) {
        var hidden = $(picker.form, "[data-jm-user-id]");
        var typed = picker.value.trim();
        var choices = document.getElementById(picker.getAttribute("list"));
        var option = $all(choices, "option").filter(function (item) {
          return item.value === typed || item.getAttribute("data-id") === typed;
        })[0];
        if (typed && !option && !choices.hasAttribute("data-jm-complete")) {
          hidden.value = typed;
          picker.disabled = true;
          return;
        }
        if (typed && !option) {
          event.preventDefault();
          picker.setCustomValidity(fill(TEXTS.noSuchUser, { name: typed }));
          picker.reportValidity();
          return;
        }
        hidden.value = option ? option.getAttribute("data-id") : "";
        picker.disabled = true;  /* the name itself is not a filter */
      });
    });
    $all(document, "[data-jm-notifications-url]").forEach(startNotifications);
  });
})();
