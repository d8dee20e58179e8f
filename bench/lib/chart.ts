import type { MicroResult } from "../cases/micro.js";

const COLORS = { encrypt: "#2f6fb0", decrypt: "#e08a1e" } as const;

function xml(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

/**
 * A horizontal bar chart (log scale) of ops/s for one value size, encrypt and decrypt
 * side by side per subject. Plain SVG text, no dependencies.
 */
export function barChart(results: MicroResult[], size: string, title: string): string {
  const rows = [...new Set(results.filter((r) => r.size === size).map((r) => r.subject))];
  const left = 300;
  const width = 980;
  const plot = width - left - 90;
  const rowHeight = 30;
  const top = 56;
  const height = top + rows.length * rowHeight + 40;
  const values = results.filter((r) => r.size === size).map((r) => r.opsPerSec);
  const minExp = Math.floor(Math.log10(Math.min(...values)));
  const maxExp = Math.ceil(Math.log10(Math.max(...values)));
  const x = (v: number) => left + ((Math.log10(v) - minExp) / (maxExp - minExp)) * plot;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="#fff"/>`,
    `<text x="${width / 2}" y="20" text-anchor="middle" font-size="15" font-weight="bold">${xml(title)}</text>`,
    `<rect x="${left}" y="30" width="12" height="12" fill="${COLORS.encrypt}"/><text x="${left + 16}" y="40">encrypt</text>`,
    `<rect x="${left + 90}" y="30" width="12" height="12" fill="${COLORS.decrypt}"/><text x="${left + 106}" y="40">decrypt</text>`,
  ];
  for (let e = minExp; e <= maxExp; e++) {
    const gx = x(10 ** e);
    out.push(
      `<line x1="${gx}" y1="${top - 4}" x2="${gx}" y2="${height - 30}" stroke="#ddd"/>`,
      `<text x="${gx}" y="${height - 14}" text-anchor="middle" fill="#555">${(10 ** e).toLocaleString("en-US")}</text>`,
    );
  }
  out.push(
    `<text x="${left + plot / 2}" y="${height - 1}" text-anchor="middle" fill="#555">operations per second (log scale)</text>`,
  );
  rows.forEach((subject, i) => {
    const y = top + i * rowHeight;
    out.push(`<text x="${left - 8}" y="${y + 18}" text-anchor="end">${xml(subject)}</text>`);
    (["encrypt", "decrypt"] as const).forEach((op, j) => {
      const r = results.find((m) => m.size === size && m.subject === subject && m.op === op);
      if (!r) return;
      const by = y + 3 + j * 12;
      const bx = x(10 ** minExp);
      out.push(
        `<rect x="${bx}" y="${by}" width="${Math.max(1, x(r.opsPerSec) - bx).toFixed(1)}" height="11" fill="${COLORS[op]}"/>`,
        `<text x="${(x(r.opsPerSec) + 4).toFixed(1)}" y="${by + 10}" font-size="10" fill="#333">${Math.round(r.opsPerSec).toLocaleString("en-US")}</text>`,
      );
    });
  });
  out.push("</svg>");
  return `${out.join("\n")}\n`;
}
