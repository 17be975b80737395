/** Formatting of times and durations for people. */

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

/** Parse an ISO 8601 string (or epoch seconds) to milliseconds since the epoch; NaN if unusable. */
export function toMillis(value) {
  if (typeof value === "number") return value * 1000;
  return Date.parse(value);
}

/** "6d 23h", "4h 05m", "12m 09s", "42s": two units, the largest first. */
export function duration(ms) {
  if (!Number.isFinite(ms)) return "–";
  const left = Math.max(0, ms);
  const d = Math.floor(left / DAY);
  const hrs = Math.floor((left % DAY) / HOUR);
  const m = Math.floor((left % HOUR) / MINUTE);
  const s = Math.floor((left % MINUTE) / SECOND);
  const pad = (n) => String(n).padStart(2, "0");
  if (d > 0) return `${d}d ${hrs}h`;
  if (hrs > 0) return `${hrs}h ${pad(m)}m`;
  if (m > 0) return `${m}m ${pad(s)}s`;
  return `${s}s`;
}

const dateTime = new Intl.DateTimeFormat(undefined, {
  weekday: "short",
  day: "numeric",
  month: "short",
  hour: "2-digit",
  minute: "2-digit",
});
// A 24-hour clock whatever the locale: "12:30:25 AM" is needlessly wide for a live clock.
const timeOnly = new Intl.DateTimeFormat(undefined, {
  hour: "2-digit",
  minute: "2-digit",
  second: "2-digit",
  hourCycle: "h23",
});

/** "Fri 27 Nov, 01:02" in the reader's locale and time zone. */
export function when(value) {
  const ms = toMillis(value);
  return Number.isFinite(ms) ? dateTime.format(ms) : "–";
}

/** "01:02:03" in the reader's locale and time zone. */
export function clockTime(value) {
  const ms = toMillis(value);
  return Number.isFinite(ms) ? timeOnly.format(ms) : "--:--:--";
}

/** "just now", "12 s ago", "3 min ago". */
export function ago(ms) {
  const s = Math.round(Math.max(0, ms) / SECOND);
  if (s < 5) return "just now";
  if (s < 60) return `${s} s ago`;
  return `${Math.round(s / 60)} min ago`;
}

/** A configured lifetime in words: "30 days", "1 hour", "90 minutes", "about 2 days" when units do not divide it. */
export function lifetime(seconds) {
  const plural = (n, unit) => `${n} ${unit}${n === 1 ? "" : "s"}`;
  if (!Number.isFinite(seconds) || seconds <= 0) return "";
  if (seconds % 86400 === 0) return plural(seconds / 86400, "day");
  if (seconds % 3600 === 0) return plural(seconds / 3600, "hour");
  if (seconds >= 86400) return `about ${plural(Math.round(seconds / 86400), "day")}`;
  if (seconds >= 3600) return `about ${plural(Math.round(seconds / 3600), "hour")}`;
  return plural(Math.max(1, Math.round(seconds / 60)), "minute");
}
