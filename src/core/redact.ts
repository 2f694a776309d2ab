/** Keeps secrets out of every line the tool writes. */
export class Redactor {
  private secrets: string[] = [];

  add(...values: (string | undefined)[]): void {
    for (const v of values) {
      // Very short values would redact ordinary words; nothing that short is a real secret.
      if (v && v.length >= 6 && !this.secrets.includes(v)) this.secrets.push(v);
    }
    this.secrets.sort((a, b) => b.length - a.length);
  }

  redact(text: string): string {
    let out = text;
    for (const s of this.secrets) if (out.includes(s)) out = out.split(s).join('[redacted]');
    // Private keys never belong in output, whoever put them there.
    return out.replace(/-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(-----END [A-Z ]*PRIVATE KEY-----|$)/g, '[redacted private key]');
  }
}
