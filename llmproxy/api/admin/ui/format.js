// How figures read: counts, shares, durations, bytes, dollars and times, in the browser's locale.

const integer = new Intl.NumberFormat(undefined, {maximumFractionDigits: 0});
const decimal = new Intl.NumberFormat(undefined, {maximumFractionDigits: 1});
const percent = new Intl.NumberFormat(undefined, {style: "percent", maximumFractionDigits: 1});
const dollars = new Intl.NumberFormat(undefined, {style: "currency", currency: "USD"});
const cents = new Intl.NumberFormat(undefined, {style: "currency", currency: "USD", maximumSignificantDigits: 3});

export const DASH = "–"; // a figure that does not exist (no lookups, no requests, not sampled yet)

export function count(value) {
  return value === null || value === undefined ? DASH : integer.format(value);
}

/** "1 entry", "2 entries". */
export function plural(n, one, many) {
  return `${count(n)} ${n === 1 ? one : many}`;
}

export function share(value) {
  return value === null || value === undefined ? DASH : percent.format(value);
}

export function ratio(part, whole) {
  return whole ? part / whole : null;
}

export function ms(value) {
  if (value === null || value === undefined) return DASH;
  return value >= 1000 ? `${decimal.format(value / 1000)} s` : `${decimal.format(value)} ms`;
}

export function usd(value) {
  if (value === null || value === undefined) return DASH;
  return value !== 0 && Math.abs(value) < 1 ? cents.format(value) : dollars.format(value);
}

export function bytes(value) {
  if (value === null || value === undefined) return DASH;
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let size = value;
  let unit = 0;
  while (size >= 1024 && unit < units.length - 1) {
    size /= 1024;
    unit += 1;
  }
  return `${decimal.format(size)} ${units[unit]}`;
}

/** A number of seconds as "45 s", "12 min", "3 h 5 min", "2 d 4 h". */
export function duration(seconds) {
  if (seconds === null || seconds === undefined) return DASH;
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min`;
  if (s < 86400) return joined(Math.floor(s / 3600), "h", Math.floor((s % 3600) / 60), "min");
  return joined(Math.floor(s / 86400), "d", Math.floor((s % 86400) / 3600), "h");
}

function joined(big, bigUnit, small, smallUnit) {
  return small ? `${big} ${bigUnit} ${small} ${smallUnit}` : `${big} ${bigUnit}`;
}

/** An instant (epoch ms) in full, in local time. */
export function when(epochMs) {
  return new Date(epochMs).toLocaleString(undefined, {dateStyle: "medium", timeStyle: "medium"});
}

/** An instant (epoch ms) as a short axis label for a chart spanning `spanMs`. */
export function tick(epochMs, spanMs) {
  const date = new Date(epochMs);
  if (spanMs <= 2 * 86400_000) return date.toLocaleTimeString(undefined, {hour: "2-digit", minute: "2-digit"});
  if (spanMs <= 8 * 86400_000) return date.toLocaleString(undefined, {weekday: "short", hour: "2-digit"});
  return date.toLocaleDateString(undefined, {month: "short", day: "numeric"});
}

/** The first characters of an id, for tables. */
export function shortId(id) {
  return id ? `${id.slice(0, 8)}…` : DASH;
}
