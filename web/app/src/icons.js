// Small line icons drawn for Confab (24x24, stroke currentColor), made as inline SVG so
// the page loads nothing else. Each is decorative: the button or label beside it carries
// the words.
const SVG = "http://www.w3.org/2000/svg";

const PATHS = {
  mic: ["M12 3a3 3 0 0 1 3 3v6a3 3 0 0 1-6 0V6a3 3 0 0 1 3-3z", "M5 11a7 7 0 0 0 14 0", "M12 18v3", "M8 21h8"],
  "mic-off": ["M15 9.5V6a3 3 0 0 0-5.8-1", "M9 9v3a3 3 0 0 0 4.9 2.3", "M5 11a7 7 0 0 0 11.5 5.4", "M19 11a7 7 0 0 1-.6 2.8", "M12 18v3", "M8 21h8", "M3 3l18 18"],
  camera: ["M3 7h11a2 2 0 0 1 2 2v6a2 2 0 0 1-2 2H3a2 2 0 0 1-2-2V9a2 2 0 0 1 2-2z", "M16 11l6-4v10l-6-4"],
  "camera-off": ["M8 7h6a2 2 0 0 1 2 2v3", "M16 16a2 2 0 0 1-2 1H3a2 2 0 0 1-2-2V9a2 2 0 0 1 2-2", "M16 11l6-4v10l-4-2.7", "M1 1l22 22"],
  screen: ["M3 4h18a1 1 0 0 1 1 1v11a1 1 0 0 1-1 1H3a1 1 0 0 1-1-1V5a1 1 0 0 1 1-1z", "M8 21h8", "M12 17v4", "M12 13V8", "M9.5 10.5L12 8l2.5 2.5"],
  grid: ["M3 3h8v8H3z", "M13 3h8v8h-8z", "M3 13h8v8H3z", "M13 13h8v8h-8z"],
  speaker: ["M2 3h20v13H2z", "M3 19h4v2H3z", "M10 19h4v2h-4z", "M17 19h4v2h-4z"],
  sound: ["M4 9h4l5-4v14l-5-4H4z", "M16.5 8.5a5 5 0 0 1 0 7", "M19 6a8.5 8.5 0 0 1 0 12"],
  leave: ["M9 21H5a2 2 0 0 1-2-2V5a2 2 0 0 1 2-2h4", "M16 17l5-5-5-5", "M21 12H9"],
};

export function icon(name) {
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("width", "20");
  svg.setAttribute("height", "20");
  svg.setAttribute("aria-hidden", "true");
  svg.setAttribute("focusable", "false");
  svg.setAttribute("class", "icon");
  for (const d of PATHS[name] || []) {
    const p = document.createElementNS(SVG, "path");
    p.setAttribute("d", d);
    svg.append(p);
  }
  return svg;
}
