// The run as one self-contained HTML file that opens offline: its CSS, uPlot and the page's script inline,
// the run's data inline as JSON in a `<script type="application/json">`, a Content-Security-Policy that
// lets only those exact scripts and styles run (by their hashes) and nothing be fetched. Every string that
// comes from an object reaches the page as data and is shown with textContent, never parsed as HTML.

import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import type { RunResult } from "./run.ts";

const ASSETS = join(import.meta.dirname, "report");
const require = createRequire(import.meta.url);

interface Assets {
  uplotJs: string;
  uplotCss: string;
  canvasJs: string;
  pageJs: string;
  pageCss: string;
}

let assets: Assets | undefined;

function loadAssets(): Assets {
  assets ??= {
    uplotJs: readFileSync(require.resolve("uplot/dist/uPlot.iife.min.js"), "utf8"),
    uplotCss: readFileSync(require.resolve("uplot/dist/uPlot.min.css"), "utf8"),
    canvasJs: readFileSync(join(ASSETS, "canvas.js"), "utf8"),
    pageJs: readFileSync(join(ASSETS, "page.js"), "utf8"),
    pageCss: readFileSync(join(ASSETS, "page.css"), "utf8"),
  };
  return assets;
}

/** The report page for a run. */
export function renderReport(result: Readonly<RunResult>): string {
  const a = loadAssets();
  const scripts = [a.uplotJs, a.canvasJs, a.pageJs].map(inlineScript);
  const style = `${a.uplotCss}\n${a.pageCss}`;
  const csp = [
    "default-src 'none'",
    `script-src ${scripts.map((s) => `'${sha256(s)}'`).join(" ")}`,
    `style-src '${sha256(style)}'`,
    "img-src data:",
    "base-uri 'none'",
    "form-action 'none'",
  ].join("; ");
  const title = `Vireo simulation: ${result.scenario.name}`;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${escapeHtml(csp)}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<title>${escapeHtml(title)}</title>
<style>${style}</style>
</head>
<body>
<noscript>This report draws its charts with JavaScript; the run's data is in the script element "vireo-run" of this file.</noscript>
<main id="report" aria-live="polite"><h1>${escapeHtml(title)}</h1></main>
<script type="application/json" id="vireo-run">${jsonForScript(result)}</script>
${scripts.map((s) => `<script>${s}</script>`).join("\n")}
</body>
</html>
`;
}

/** Text safe inside an HTML element or a quoted attribute. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/**
 * JSON that cannot end its script element early or open a comment there: `<`, `>` and `&` are written as
 * \u escapes, which JSON.parse reads back as the same characters.
 */
export function jsonForScript(value: unknown): string {
  return JSON.stringify(value).replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}

/** Script text as it must appear inline: a `</script` inside it would end the element. */
function inlineScript(code: string): string {
  return code.replace(/<\/(script)/gi, "<\\/$1");
}

function sha256(text: string): string {
  return `sha256-${createHash("sha256").update(text, "utf8").digest("base64")}`;
}
