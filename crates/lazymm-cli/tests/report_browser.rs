//! The report rendered in a real browser: headless Chromium (Debian's
//! `chromium` package, or `$LAZYMM_CHROMIUM`) loads `index.html` with a
//! checking script and reports, per chart, whether it has data and whether
//! any text sticks out of its SVG or is crossed by a series' line; per page, whether anything is wider than
//! the window.
//!
//! Where Chromium is absent the test prints why it checked nothing and
//! passes (a developer machine need not have a browser); with
//! `LAZYMM_REQUIRE_BROWSER=1` (set by CI, which installs `chromium`) the
//! absence is a failure, so CI cannot pass without the check.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The checks, run in the page after load; the result goes into
/// `<pre id="lazymm-check">` which `--dump-dom` prints.
const CHECK_JS: &str = r##"
<script>
(function () {
  const palette = ["#1F77B4","#FF7F0E","#2CA02C","#D62728","#9467BD","#8C564B","#E377C2","#7F7F7F","#BCBD22","#17BECF"];
  const out = [];
  const figs = document.querySelectorAll("figure");
  out.push("figures " + figs.length);
  figs.forEach(function (f) {
    const svg = f.querySelector("svg");
    const id = f.id;
    if (!svg) { out.push("NOSVG " + id); return; }
    const vb = svg.viewBox.baseVal;
    // Data: every series colour used must mark more than its legend swatch.
    const counts = {};
    svg.querySelectorAll("polyline, circle, rect, polygon, path").forEach(function (e) {
      const c = ((e.getAttribute("stroke") || "") + " " + (e.getAttribute("fill") || "")).toUpperCase();
      palette.forEach(function (p) { if (c.indexOf(p) >= 0) counts[p] = (counts[p] || 0) + 1; });
    });
    const colours = Object.keys(counts);
    if (colours.length === 0) out.push("NODATA " + id);
    colours.forEach(function (p) { if (counts[p] < 2) out.push("LEGENDONLY " + id + " " + p); });
    // Segments of the lines drawn over the data: every polyline but the
    // axes and ticks (black) and the grid (light grey).
    const segs = [];
    svg.querySelectorAll("polyline").forEach(function (e) {
      if (["#000000", "#D7D7D7", "#F0F0F0"].indexOf((e.getAttribute("stroke") || "").toUpperCase()) >= 0) return;
      const p = e.points;
      for (let i = 1; i < p.numberOfItems; i++)
        segs.push([p.getItem(i - 1).x, p.getItem(i - 1).y, p.getItem(i).x, p.getItem(i).y]);
    });
    // Does segment s cross rectangle r = [x0, y0, x1, y1]? (Liang-Barsky.)
    function crosses(s, r) {
      const dx = s[2] - s[0], dy = s[3] - s[1];
      const ps = [-dx, dx, -dy, dy], qs = [s[0] - r[0], r[2] - s[0], s[1] - r[1], r[3] - s[1]];
      let t0 = 0, t1 = 1;
      for (let i = 0; i < 4; i++) {
        if (ps[i] === 0) { if (qs[i] < 0) return false; continue; }
        const t = qs[i] / ps[i];
        if (ps[i] < 0) { if (t > t1) return false; if (t > t0) t0 = t; }
        else { if (t < t0) return false; if (t < t1) t1 = t; }
      }
      return true;
    }
    // Text inside the SVG's box.
    let texts = 0;
    let minFont = 1e9;
    svg.querySelectorAll("text").forEach(function (t) {
      texts++;
      const b = t.getBBox();
      const m = t.getCTM();
      // Corners in SVG user space (rotated labels included).
      const pts = [[b.x, b.y], [b.x + b.width, b.y], [b.x, b.y + b.height], [b.x + b.width, b.y + b.height]]
        .map(function (q) { const p = svg.createSVGPoint(); p.x = q[0]; p.y = q[1];
          const s = p.matrixTransform(svg.getCTM().inverse().multiply(m)); return [s.x, s.y]; });
      const bad = pts.some(function (q) { return q[0] < vb.x - 0.5 || q[1] < vb.y - 0.5 || q[0] > vb.x + vb.width + 0.5 || q[1] > vb.y + vb.height + 0.5; });
      if (bad) out.push("OVERFLOW " + id + " " + JSON.stringify(t.textContent.trim()));
      // No series line through a label (its box shrunk by a pixel).
      const xs = pts.map(function (q) { return q[0]; }), ys = pts.map(function (q) { return q[1]; });
      const r = [Math.min.apply(null, xs) + 1, Math.min.apply(null, ys) + 1, Math.max.apply(null, xs) - 1, Math.max.apply(null, ys) - 1];
      if (t.textContent.trim() && segs.some(function (s) { return crosses(s, r); }))
        out.push("STRUCK " + id + " " + JSON.stringify(t.textContent.trim()));
      const fs = parseFloat(t.getAttribute("font-size") || "0") * svg.getBoundingClientRect().width / vb.width;
      if (fs > 0 && fs < minFont) minFont = fs;
    });
    out.push("chart " + id + " colours " + colours.length + " texts " + texts + " min-font-px " + minFont.toFixed(1));
  });
  // Nothing wider than the window: what is wider must be inside a box
  // that scrolls (a wide table scrolls within its own box).
  const w = document.documentElement.clientWidth;
  function inScroller(e) {
    for (let a = e.parentElement; a && a !== document.body; a = a.parentElement) {
      const o = getComputedStyle(a).overflowX;
      if (o === "auto" || o === "scroll") return true;
    }
    return false;
  }
  document.querySelectorAll("body *").forEach(function (e) {
    const r = e.getBoundingClientRect();
    if (r.width > 0 && r.right > w + 1 && !e.closest("pre") && !inScroller(e)) out.push("PAGEOVERFLOW " + e.tagName + " " + (e.id || "") + " " + Math.round(r.right));
  });
  const pre = document.createElement("pre");
  pre.id = "lazymm-check";
  pre.textContent = out.join("\n");
  document.body.appendChild(pre);
})();
</script>
"##;

fn chromium() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("LAZYMM_CHROMIUM") {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH")?;
    for name in ["chromium", "chromium-browser", "google-chrome"] {
        for d in std::env::split_paths(&path) {
            let p = d.join(name);
            if p.is_file() {
                return Some(p);
            }
        }
    }
    None
}

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_lazymm"));
    c.current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."));
    c
}

#[test]
fn the_report_renders_in_chromium_with_data_and_no_overflow() {
    let Some(browser) = chromium() else {
        let why = "chromium not found in PATH (Debian: apt-get install chromium; or set \
                   LAZYMM_CHROMIUM=/path): the report was NOT checked in a browser";
        if std::env::var_os("LAZYMM_REQUIRE_BROWSER").is_some() {
            panic!("{why} (LAZYMM_REQUIRE_BROWSER is set)");
        }
        eprintln!("SKIPPED: {why}");
        println!("SKIPPED: {why}");
        return;
    };
    let dir = std::env::temp_dir().join(format!("lazymm-browser-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    // A small but complete report: two profiles (one with a flush IPI, one
    // without), the traces, a sweep to 256 CPUs, two machines in simulated
    // time (one extrapolated beyond its 2 CPUs).
    let o = bin()
        .args([
            "compare",
            "--rounds",
            "60",
            "--cpus",
            "2,8,64,256",
            "--arch",
            "x86,arm64",
            "--machine",
            "altra-q80-2s,this-machine",
            "--report",
        ])
        .arg(&dir)
        .output()
        .expect("run lazymm");
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let html = std::fs::read_to_string(dir.join("index.html")).expect("index.html");
    let checked = html.replace("</body>", &format!("{CHECK_JS}</body>"));
    assert_ne!(checked, html, "no </body> in index.html");
    let page = dir.join("check.html");
    std::fs::write(&page, checked).expect("write");
    let profile = dir.join("chromium-profile");
    let out = Command::new(&browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--window-size=1440,1000",
            "--virtual-time-budget=5000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("--dump-dom")
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("run chromium");
    let dom = String::from_utf8_lossy(&out.stdout);
    let start = dom.find("<pre id=\"lazymm-check\">").unwrap_or_else(|| {
        panic!(
            "no check output; chromium said: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let body = &dom[start + "<pre id=\"lazymm-check\">".len()..];
    let report = &body[..body.find("</pre>").expect("</pre>")];
    println!("{report}");
    let lines: Vec<&str> = report.lines().collect();
    let figures: usize = lines[0]
        .strip_prefix("figures ")
        .and_then(|n| n.parse().ok())
        .expect("figure count");
    let svgs = std::fs::read_dir(&dir)
        .expect("dir")
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "svg"))
        })
        .count();
    assert!(figures >= 8, "{report}");
    assert_eq!(figures, svgs, "every SVG file is a figure of the page");
    let problems: Vec<&&str> = lines
        .iter()
        .filter(|l| {
            [
                "NOSVG",
                "NODATA",
                "LEGENDONLY",
                "OVERFLOW",
                "STRUCK",
                "PAGEOVERFLOW",
            ]
            .iter()
            .any(|p| l.starts_with(p))
        })
        .collect();
    assert!(problems.is_empty(), "{problems:#?}");
    let _ = std::fs::remove_dir_all(&dir);
}
