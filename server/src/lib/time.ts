/** PostgreSQL text timestamps ('2026-11-24 22:47:15.274+00') → ISO 8601 with Z, the wire format. */
export function toIso(value: string | Date): string {
  return (value instanceof Date ? value : new Date(value)).toISOString();
}
