// The errors the agent ingress answers RPCs with, in ngrok's words (ngrok-docs
// errors/err_ngrok_*.mdx), and their wire form: `{"Error":"msg\r\n\r\nERR_NGROK_n\r\n"}`.
// The SDK splits the ERR_NGROK_ line into `error_code` (ngrok-rust proto.rs `ErrResp`) and
// the JS binding appends ` error_code: ERR_NGROK_n` to the message.

export type NgrokCode = `ERR_NGROK_${number}`;

export class NgrokRpcError extends Error {
  /** Absent for the fake's own refusals (what it does not implement), which no real code describes. */
  readonly code: NgrokCode | undefined;
  constructor(message: string, code?: NgrokCode) {
    super(message);
    this.name = "NgrokRpcError";
    this.code = code;
  }

  /** The RPC reply carrying this error. */
  toWire(): { Error: string } {
    const text = this.message.replace(/\r?\n/g, "\r\n");
    return { Error: this.code ? `${text}\r\n\r\n${this.code}\r\n` : `${text}\r\n` };
  }
}

export const authtokenMissing = (): NgrokRpcError =>
  new NgrokRpcError(
    "authentication failed: Usage of ngrok requires a verified account and authtoken.\n\nSign up for an account: https://dashboard.ngrok.com/signup\nInstall your authtoken: https://dashboard.ngrok.com/get-started/your-authtoken",
    "ERR_NGROK_4018",
  );

// ngrok's own 105/107 messages quote the token; the fake leaves it out (secrets stay out of logs).
export const authtokenMalformed = (): NgrokRpcError =>
  new NgrokRpcError(
    "The authtoken you specified does not look like a proper ngrok authtoken.\nInstructions to install your authtoken are on your ngrok dashboard:\nhttps://dashboard.ngrok.com/get-started/your-authtoken",
    "ERR_NGROK_105",
  );

export const authtokenInvalid = (): NgrokRpcError =>
  new NgrokRpcError(
    "The authtoken you specified is properly formed, but it is invalid.\nThis usually happens when:\n    - You reset your authtoken\n    - Your authtoken was for a team account that you were removed from\n    - You are using ngrok link and this credential was explicitly revoked\nGo to your ngrok dashboard and double check that your authtoken is correct:\nhttps://dashboard.ngrok.com/get-started/your-authtoken",
    "ERR_NGROK_107",
  );

export const sessionLimit = (max: number): NgrokRpcError =>
  new NgrokRpcError(
    `Your account is limited to ${max} simultaneous ngrok agent sessions.\nYou can run multiple simultaneous tunnels from a single agent session by defining the tunnels in your agent configuration file and starting them with the command \`ngrok start --all\`.\nYou can view your current agent sessions in the dashboard:\nhttps://dashboard.ngrok.com/agents`,
    "ERR_NGROK_108",
  );

export const unsupportedProtocolVersion = (offered: readonly string[]): NgrokRpcError =>
  new NgrokRpcError(`The agent offered protocol versions [${offered.join(", ")}]; this server speaks 3 and 2.`, "ERR_NGROK_120");

export const domainNotReserved = (domain: string, account: string): NgrokRpcError =>
  new NgrokRpcError(
    `You must reserve a custom hostname for your account before it can be used to create endpoints.\nFailed to create an endpoint with the domain '${domain}' for the account '${account}'.\n\nReserve this name on your dashboard: https://dashboard.ngrok.com/domains/new`,
    "ERR_NGROK_319",
  );

export const alreadyOnline = (url: string): NgrokRpcError =>
  new NgrokRpcError(
    `The endpoint '${url}' is already online. Either\n1. stop your existing endpoint first, or\n2. start both endpoints with \`--pooling-enabled\` to load balance between them.`,
    "ERR_NGROK_334",
  );

export const poolingUnavailable = (): NgrokRpcError =>
  new NgrokRpcError("This account does not have access to Endpoint pooling. Upgrade or switch to a pay-as-you-go plan for access.", "ERR_NGROK_18019");

export const endpointLimit = (max: number, urls: readonly string[]): NgrokRpcError =>
  new NgrokRpcError(
    `Your account may not run more than ${max} endpoints over a single ngrok agent session.\nThe endpoints already running on this session are:\n${urls.join(", ")}.\nUpgrade to a Pay-as-you-go plan at: https://dashboard.ngrok.com/billing/choose-a-plan?plan=paygo`,
    "ERR_NGROK_324",
  );

export const addrNotReserved = (addr: string, account: string, region: string): NgrokRpcError =>
  new NgrokRpcError(
    `You must reserve an address for your account before it can be used.\nFailed to create the address '${addr}' for the account '${account}' in region '${region}'.\n(Hint: Did you reserve the address in this region?)\n\nReserve an address on your dashboard: https://dashboard.ngrok.com/tcp-addresses`,
    "ERR_NGROK_307",
  );

export const tlsEndpointsUnavailable = (account: string): NgrokRpcError =>
  new NgrokRpcError(
    `Failed to create a TLS endpoint for the account '${account}'.\nOnly Pay-as-you-go plans may create TLS endpoints.\nThis account is on the 'Free' plan.\n\nUpgrade to a Pay-as-you-go plan at: https://dashboard.ngrok.com/billing/choose-a-plan?plan=paygo`,
    "ERR_NGROK_312",
  );

/** Not an ngrok error: the fake refusing what it does not implement (also recorded as a violation). */
export const notImplemented = (what: readonly string[]): NgrokRpcError =>
  new NgrokRpcError(`fake-ngrok does not implement: ${what.join("; ")}`);
