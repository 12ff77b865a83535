// The Suanwang dashboard's one script (served from the binary; no libraries, no network beyond
// this server). It (1) shows <time datetime> in the viewer's zone and language, (2) refreshes
// elements marked data-live every 5 s from the same page, and (3) sends forms marked data-api to
// the JSON API (the token travels in the HttpOnly cookie; X-Suanwang-CSRF marks the call as ours),
// showing the API's error message next to the field it names.
(function () {
  'use strict';
  var lang = document.documentElement.lang || 'zh-CN';
  var REFRESH_MS = 5000;
  var UPLOAD_MAX = 8 * 1024 * 1024;

  function localTimes(root) {
    root.querySelectorAll('time[datetime]').forEach(function (t) {
      var iso = t.getAttribute('datetime');
      var d = new Date(iso);
      if (!isNaN(d.getTime())) {
        t.textContent = d.toLocaleString(lang, {
          year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit'
        });
        t.title = iso;
      }
    });
  }

  function remember(root) {
    root.querySelectorAll('[data-live][id]').forEach(function (el) { el.dataset.raw = el.innerHTML; });
  }

  function refresh() {
    if (document.hidden) return;
    var live = document.querySelectorAll('[data-live][id]');
    if (!live.length) return;
    fetch(location.href, { credentials: 'same-origin' }).then(function (r) {
      if (r.status === 401) { location.reload(); return null; }
      return r.ok ? r.text() : null;
    }).then(function (html) {
      if (!html) return;
      var doc = new DOMParser().parseFromString(html, 'text/html');
      live.forEach(function (el) {
        var fresh = doc.getElementById(el.id);
        if (!fresh || fresh.innerHTML === el.dataset.raw) return;
        if (el.contains(document.activeElement) && document.activeElement !== document.body) return;
        el.innerHTML = fresh.innerHTML;
        el.dataset.raw = fresh.innerHTML;
        localTimes(el);
        wire(el);
      });
    }).catch(function () { /* the server is away for a moment: the next round tries again */ });
  }

  function clearErrors(form) {
    form.querySelectorAll('.field-error').forEach(function (s) { s.textContent = ''; });
    form.querySelectorAll('[aria-invalid]').forEach(function (i) { i.removeAttribute('aria-invalid'); });
    var general = form.querySelector('.form-error');
    if (general) { general.textContent = ''; general.hidden = true; }
  }

  function showError(form, field, message) {
    var slot = null;
    form.querySelectorAll('.field-error[data-field]').forEach(function (s) {
      if (s.dataset.field === field) slot = s;
    });
    if (slot) {
      slot.textContent = message;
      var input = document.getElementById(slot.id.replace(/-error$/, ''));
      if (input) { input.setAttribute('aria-invalid', 'true'); input.focus(); }
      return;
    }
    var general = form.querySelector('.form-error');
    general.textContent = message;
    general.hidden = false;
  }

  function readBody(form) {
    if (form.dataset.body) return Promise.resolve(JSON.parse(form.dataset.body));
    var body = {};
    var pending = [];
    form.querySelectorAll('input, select, textarea').forEach(function (input) {
      if (input.type === 'file') {
        var file = input.files && input.files[0];
        if (!file) return;
        if (file.size > UPLOAD_MAX) throw new Error(file.name + ': > 8 MiB');
        pending.push(file.text().then(function (text) { body[input.dataset.fileInto] = text; }));
        return;
      }
      if (!input.name) return;
      var v = input.value.trim();
      if (v === '') return;
      var type = input.dataset.type;
      if (type === 'bool') {
        body[input.name] = v === 'true';
      } else if (type === 'time') {
        // datetime-local is the viewer's own time; the API takes seconds since 1970 (UTC).
        var ms = new Date(v).getTime();
        body[input.name] = isNaN(ms) ? v : Math.floor(ms / 1000);
      } else if (type === 'yuan') {
        // Yuan with at most two decimals, to whole fen by text, never by floating point.
        var m = /^(\d+)(?:\.(\d{1,2}))?$/.exec(v);
        body[input.name] = m ? Number(m[1]) * 100 + Number(((m[2] || '') + '00').slice(0, 2)) : v;
      } else if (type === 'int') {
        // A value that is not a whole number goes as typed, so the API names the problem.
        body[input.name] = /^-?\d+$/.test(v) ? Number(v) : v;
      } else if (type === 'words') {
        body[input.name] = v.split(/\s+/);
      } else if (type === 'models') {
        // "A100-SXM4-80GB Ascend-910B:0.6": a name, or a name and the job's speed on it.
        body[input.name] = v.split(/[\s,]+/).map(function (word) {
          var i = word.lastIndexOf(':');
          if (i < 1) return word;
          var speed = Number(word.slice(i + 1));
          return { model: word.slice(0, i), speed: isNaN(speed) ? word.slice(i + 1) : speed };
        });
      } else {
        body[input.name] = v;
      }
    });
    return Promise.all(pending).then(function () { return body; });
  }

  function after(then, answer) {
    if (then && then.indexOf('go:') === 0) {
      location.href = then.slice(3).replace('{id}', answer && answer.id !== undefined ? answer.id : '');
    } else {
      location.reload();
    }
  }

  function submit(form, event) {
    event.preventDefault();
    clearErrors(form);
    var button = form.querySelector('button[type=submit]');
    var label = button.textContent;
    Promise.resolve().then(function () { return readBody(form); }).then(function (body) {
      button.disabled = true;
      button.setAttribute('aria-busy', 'true');
      var headers = { 'Content-Type': 'application/json', 'X-Suanwang-CSRF': '1' };
      if (form.dataset.key) headers['Idempotency-Key'] = form.dataset.key;
      return fetch(form.dataset.api, {
        method: form.dataset.method || 'POST',
        credentials: 'same-origin',
        headers: headers,
        body: JSON.stringify(body)
      });
    }).then(function (r) {
      return r.text().then(function (text) {
        var json = null;
        try { json = JSON.parse(text); } catch (e) { json = null; }
        if (r.ok) { after(form.dataset.then, json); return; }
        var error = json && json.error ? json.error : { code: 'http_' + r.status, message: text.slice(0, 300) };
        showError(form, error.field, error.message + ' (' + error.code + ')');
      });
    }).catch(function (e) {
      showError(form, null, String(e && e.message ? e.message : e));
    }).then(function () {
      button.disabled = false;
      button.removeAttribute('aria-busy');
      button.textContent = label;
    });
  }

  function verify(button) {
    var out = document.getElementById('verify-result');
    button.disabled = true;
    fetch(button.dataset.verify, { credentials: 'same-origin' }).then(function (r) { return r.json(); })
      .then(function (v) {
        out.textContent = v.intact ? ('✓ intact: ' + v.entries + ' entries verified')
          : v.error ? (v.error.message + ' (' + v.error.code + ')')
          : ('✗ BROKEN at entry ' + v.first_broken + ': ' + v.reason);
        out.className = v.intact ? 'ok' : 'error';
      }).catch(function (e) { out.textContent = String(e); })
      .then(function () { button.disabled = false; });
  }

  function wire(root) {
    root.querySelectorAll('form[data-api]').forEach(function (form) {
      if (form.dataset.wired) return;
      form.dataset.wired = '1';
      form.addEventListener('submit', function (event) { submit(form, event); });
    });
    root.querySelectorAll('button[data-verify]').forEach(function (button) {
      if (button.dataset.wired) return;
      button.dataset.wired = '1';
      button.addEventListener('click', function () { verify(button); });
    });
  }

  remember(document);
  localTimes(document);
  wire(document);
  setInterval(refresh, REFRESH_MS);
})();
