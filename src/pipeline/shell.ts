/** Quote a value for a POSIX shell command line. */
export function shellQuote(value: string): string {
  if (/^[A-Za-z0-9_\/.:=@%+,-]+$/.test(value)) return value;
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

/**
 * Scripts run as root. Cloud images log in as another user (admin on Debian's AMIs), which
 * reaches root through passwordless sudo.
 */
export function asRoot(user: string): (command: string) => string {
  return user === 'root' ? (command) => command : (command) => `sudo -n sh -c ${shellQuote(command)}`;
}
