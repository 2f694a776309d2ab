/** Version names: `NAME-YYYYMMDDHHMMSS`, in UTC, as the first version of this tool named them. */

const STAMP = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})$/;

export function timestamp(date: Date): string {
  const pad = (n: number, w = 2) => String(n).padStart(w, '0');
  return (
    pad(date.getUTCFullYear(), 4) +
    pad(date.getUTCMonth() + 1) +
    pad(date.getUTCDate()) +
    pad(date.getUTCHours()) +
    pad(date.getUTCMinutes()) +
    pad(date.getUTCSeconds())
  );
}

export function versionName(image: string, date: Date): string {
  return `${image}-${timestamp(date)}`;
}

/** Splits `app-20260101120000` into its image and date; undefined when it is not a version name. */
export function parseVersionName(version: string): { image: string; date: Date } | undefined {
  const dash = version.lastIndexOf('-');
  if (dash <= 0) return undefined;
  const m = STAMP.exec(version.slice(dash + 1));
  if (!m) return undefined;
  const [, y, mo, d, h, mi, s] = m.map(Number);
  const date = new Date(Date.UTC(y!, mo! - 1, d!, h!, mi!, s!));
  if (timestamp(date) !== version.slice(dash + 1)) return undefined;
  return { image: version.slice(0, dash), date };
}

/**
 * A reference to an image or one of its versions as users type it: `app`, `app@app-20260101120000`,
 * or `app@20260101120000` (the stamp alone).
 */
export function parseImageRef(ref: string): { image: string; version?: string } {
  const at = ref.indexOf('@');
  if (at < 0) return { image: ref };
  const image = ref.slice(0, at);
  const version = ref.slice(at + 1);
  return { image, version: STAMP.test(version) ? `${image}-${version}` : version };
}

/** Newest first: version names sort by their stamp. */
export function byNewest<T extends { version: string }>(a: T, b: T): number {
  return a.version < b.version ? 1 : a.version > b.version ? -1 : 0;
}
