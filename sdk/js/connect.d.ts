export interface ConnectOutcome {
  /** "connected", "error", or "closed" when the user closed the popup first. */
  status: string | null;
  provider: string | null;
  connection_id: string | null;
  /** A stable error code (e.g. "access_denied") when status is "error". */
  error: string | null;
}

export interface ConnectOptions {
  width?: number;
  height?: number;
  windowName?: string;
  /** Where to come back when popups are blocked (default: this page). Must be in the tenant's allow-list. */
  returnTo?: string;
}

export function connect(connectUrl: string, options?: ConnectOptions): Promise<ConnectOutcome>;
export function outcomeFromRedirect(location?: Location | URL): ConnectOutcome | null;
