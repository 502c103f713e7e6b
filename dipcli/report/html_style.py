"""The HTML report's style sheet and its small script (sorting the summary, the before/after
slider and its zoom): inline, so that the page works offline from one file."""

CSS = """
:root{--fg:#1d2330;--muted:#5b6473;--line:#dde1e8;--bg:#f4f5f8;--card:#fff;--accent:#2f6fdb;
--loss:#2f6fdb;--psnr:#e07b1a;--kept:#1f9d55;--last:#6b7280;--stage:#8b5cf6}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--fg);
font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif}
header,main{max-width:1180px;margin:0 auto;padding:0 20px}
header{padding-top:18px}
h1{font-size:22px;margin:0 0 4px}
h2{font-size:17px;margin:0 0 8px}
h3{font-size:14px;margin:14px 0 6px;color:var(--muted)}
.meta,.hint,.paths,.label{color:var(--muted);margin:2px 0}
.label{font-size:12px;text-transform:uppercase;letter-spacing:.04em;margin-top:10px}
pre{background:#1e2430;color:#e8ecf3;padding:8px 12px;border-radius:6px;overflow:auto;
font:12.5px/1.4 ui-monospace,"DejaVu Sans Mono",monospace;white-space:pre-wrap;word-break:break-all}
.card{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:16px 18px;margin:16px 0;
box-shadow:0 1px 2px rgba(0,0,0,.04)}
.scroll{overflow-x:auto}
table.summary{border-collapse:collapse;width:100%;font-variant-numeric:tabular-nums}
.summary th,.summary td{padding:5px 9px;border-bottom:1px solid var(--line);text-align:left;
white-space:nowrap}
.summary td:nth-child(8){white-space:normal;min-width:12em}
.summary th{background:#eef1f6;cursor:pointer;user-select:none;font-weight:600;position:relative}
.summary th:hover{background:#e3e8f1}
.summary th[aria-sort=ascending]::after{content:" ▲";font-size:10px}
.summary th[aria-sort=descending]::after{content:" ▼";font-size:10px}
.summary tbody tr:hover{background:#f6f8fc}
.summary tr.failed{background:#fff5f5}
.summary a{color:var(--accent);text-decoration:none}
.err,.error{color:#b42318}
.error{background:#fff5f5;border:1px solid #f5c2c0;border-radius:6px;padding:8px 10px;white-space:pre-wrap}
.warn{background:#fffbeb;border:1px solid #f3d58a;border-radius:6px;padding:8px 10px}
.badge{display:inline-block;padding:1px 8px;border-radius:99px;font-size:12px;font-weight:600;
background:#e5e7eb;color:#374151;vertical-align:middle}
.badge.ok{background:#dcfce7;color:#166534}.badge.failed{background:#fee2e2;color:#991b1b}
.badge.interrupted{background:#fef3c7;color:#92400e}.badge.skipped{background:#e0e7ff;color:#3730a3}
.idx{display:inline-block;min-width:26px;padding:0 6px;margin-right:4px;border-radius:6px;background:#1e2430;
color:#fff;text-align:center;font-size:14px}
.cmp{margin:10px 0 4px}
.controls{display:flex;flex-wrap:wrap;gap:6px 14px;align-items:center;margin-bottom:6px;color:var(--muted)}
.controls select{font:inherit;padding:2px 4px}
.zoom button{font:inherit;padding:1px 8px;margin-left:2px;border:1px solid var(--line);background:#fff;
border-radius:5px;cursor:pointer}
.zoom button.on{background:var(--accent);border-color:var(--accent);color:#fff}
.viewport{overflow:auto;max-width:100%;max-height:75vh;border:1px solid var(--line);border-radius:6px;
background:#e9ecf1;display:inline-block;vertical-align:top}
.stage{position:relative;width:calc(var(--w) * var(--z) * 1px);height:calc(var(--h) * var(--z) * 1px)}
.layer{position:absolute;inset:0}
.layer img{display:block;width:100%;height:100%;image-rendering:pixelated}
.layer.top{clip-path:inset(0 50% 0 0)}
.layer,.alpha{background:repeating-conic-gradient(#d5d8de 0 25%,#fff 0 50%) 0 0/16px 16px}
.divider{position:absolute;top:0;bottom:0;left:50%;width:2px;margin-left:-1px;background:#fff;
box-shadow:0 0 0 1px rgba(0,0,0,.45);pointer-events:none}
.reveal{display:block;width:min(100%,calc(var(--w) * var(--z) * 1px + 2px));margin:6px 0 0}
.strip{display:flex;flex-wrap:wrap;gap:12px;margin:34px 0 4px}
.curves{width:680px;max-width:100%}
figure{margin:0}
figure img{display:block;border:1px solid var(--line);border-radius:4px;max-width:100%;height:auto}
img.pix{image-rendering:pixelated}
figcaption{font-size:12px;color:var(--muted);margin-top:3px}
.caption{font-size:13px;color:var(--muted);max-width:72em;margin:6px 0}
.curves svg{max-width:100%;height:auto;display:block}
.chart .plot{fill:#fff;stroke:var(--line)}
.chart .grid{stroke:#eef0f4}
.chart .tick{font-size:11px;fill:var(--muted)}
.chart .axis{font-size:12px;fill:var(--fg)}
.chart .tick.loss,.chart .axis.loss{fill:var(--loss)}
.chart .tick.psnr,.chart .axis.psnr{fill:var(--psnr)}
.chart path{fill:none;stroke-linejoin:round}
.chart path.loss{stroke:var(--loss);stroke-width:1.5}
.chart path.raw{stroke:var(--psnr);stroke-width:1;opacity:.45}
.chart path.ema{stroke:var(--psnr);stroke-width:1.8}
.chart .stage1{fill:var(--stage);opacity:.1}
.chart .mark{stroke-width:1.3}
.chart .mark.kept{stroke:var(--kept);stroke-dasharray:5 3}
.chart .mark.last{stroke:var(--last);stroke-dasharray:2 3}
.chart .tag{font-size:11px;fill:var(--muted)}
.chart .tag.kept{fill:var(--kept)}
.legend{display:flex;flex-wrap:wrap;gap:4px 16px;font-size:12px;color:var(--muted);margin:2px 0 0 64px}
.sw{display:inline-block;width:18px;height:0;border-top:2px solid;vertical-align:middle;margin-right:5px}
.sw.loss{border-color:var(--loss)}.sw.raw{border-color:var(--psnr);opacity:.45}.sw.ema{border-color:var(--psnr)}
.sw.kept{border-top:2px dashed var(--kept)}.sw.last{border-top:2px dotted var(--last)}
.sw.stage1{height:10px;border:0;background:var(--stage);opacity:.25}
.chart path.noise{stroke-width:1.6}.chart path.red,.sw.noise.red{stroke:#c0392b;border-color:#c0392b}
.chart path.green,.sw.noise.green{stroke:#2e8b3a;border-color:#2e8b3a}
.chart path.blue,.sw.noise.blue{stroke:#2f5fb3;border-color:#2f5fb3}
.chart path.grey,.sw.noise.grey{stroke:#555;border-color:#555}
.row{display:flex;flex-wrap:wrap;gap:8px 28px;align-items:flex-start;margin-top:6px}
.row>.main{flex:0 1 auto;max-width:100%;min-width:0}
.row>.side{flex:1 1 300px;min-width:0}
table.settings{border-collapse:collapse;font-size:13px}
.settings th{text-align:left;font-weight:500;color:var(--muted);padding:2px 16px 2px 0}
.settings td{padding:2px 0;font-variant-numeric:tabular-nums}
details{margin-top:10px}
summary{cursor:pointer;color:var(--muted)}
.empty{color:var(--muted)}
"""

SCRIPT = r"""
(function () {
  "use strict";
  function key(td) {
    var v = td.getAttribute("data-v");
    if (v === null || v === "") return null;
    var n = Number(v);
    return isNaN(n) ? v.toLowerCase() : n;
  }
  document.querySelectorAll("table.summary").forEach(function (table) {
    var heads = table.tHead.rows[0].cells;
    Array.prototype.forEach.call(heads, function (th, col) {
      function sort() {
        var asc = th.getAttribute("aria-sort") !== "ascending";
        Array.prototype.forEach.call(heads, function (h) { h.setAttribute("aria-sort", "none"); });
        th.setAttribute("aria-sort", asc ? "ascending" : "descending");
        var body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows);
        rows.sort(function (a, b) {
          var x = key(a.cells[col]), y = key(b.cells[col]);
          if (x === null || y === null) return (x === null) - (y === null);  /* blanks last */
          if (typeof x !== typeof y) { x = String(x); y = String(y); }
          return (x < y ? -1 : x > y ? 1 : 0) * (asc ? 1 : -1);
        });
        rows.forEach(function (r) { body.appendChild(r); });
      }
      th.addEventListener("click", sort);
      th.addEventListener("keydown", function (e) {
        if (e.key === "Enter" || e.key === " ") { e.preventDefault(); sort(); }
      });
    });
  });
  document.querySelectorAll(".cmp").forEach(function (cmp) {
    var entry = cmp.getAttribute("data-entry");
    var top = cmp.querySelector(".layer.top"), divider = cmp.querySelector(".divider");
    var range = cmp.querySelector(".reveal");
    function show(img, kind) {
      var src = document.getElementById("e" + entry + "-" + kind);
      if (src) { img.src = src.src; img.setAttribute("data-kind", kind); }
    }
    var left = cmp.querySelector(".img-left"), right = cmp.querySelector(".img-right");
    var pickLeft = cmp.querySelector(".pick-left"), pickRight = cmp.querySelector(".pick-right");
    show(left, pickLeft.value);
    show(right, pickRight.value);
    pickLeft.addEventListener("change", function () { show(left, pickLeft.value); });
    pickRight.addEventListener("change", function () { show(right, pickRight.value); });
    function reveal() {
      var v = Math.max(0, Math.min(100, Number(range.value)));
      top.style.clipPath = "inset(0 " + (100 - v) + "% 0 0)";
      divider.style.left = v + "%";
    }
    range.addEventListener("input", reveal);
    reveal();
    cmp.querySelectorAll("button[data-zoom]").forEach(function (b) {
      b.addEventListener("click", function () {
        cmp.style.setProperty("--z", b.getAttribute("data-zoom"));
        cmp.querySelectorAll("button[data-zoom]").forEach(function (o) {
          o.classList.toggle("on", o === b);
          o.setAttribute("aria-pressed", String(o === b));
        });
      });
    });
  });
})();
"""
