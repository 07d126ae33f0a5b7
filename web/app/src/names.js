// Telling participants with the same name apart: the first one to join keeps the name, the
// next ones are shown as "Ada (2)", "Ada (3)", in the order they joined. Names that differ
// only in case or spacing count as the same, as a person reading them would.

function key(name) {
  return String(name || "").trim().replace(/\s+/g, " ").toLocaleLowerCase();
}

// labels returns, for participants in the order they joined ({id, name}), a Map from id to
// the name to show.
export function labels(participants) {
  const seen = new Map();
  const out = new Map();
  for (const p of participants) {
    const k = key(p.name);
    const n = (seen.get(k) || 0) + 1;
    seen.set(k, n);
    out.set(p.id, n === 1 ? p.name : `${String(p.name).trim()} (${n})`);
  }
  return out;
}

// shared reports whether someone else among participants has p's name.
export function shared(participants, p) {
  const k = key(p.name);
  for (const q of participants) if (q.id !== p.id && key(q.name) === k) return true;
  return false;
}
