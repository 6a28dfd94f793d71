// Certificates for the fake: a throwaway CA, and leaves it signs. rustls (the SDK's TLS)
// trusts only the CA given with `caCert(...)`, checks the server name against the host
// in `serverAddr`, and (webpki) refuses a self-signed leaf marked CA:TRUE, so the agent
// ingress needs a real CA + leaf pair. openssl does the work: node:crypto cannot issue.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface IssuedCert {
  certPem: string;
  keyPem: string;
}

export interface TestCa {
  /** The CA certificate: what clients trust (`SessionBuilder.caCert`, `tls.connect({ ca })`). */
  caPem: string;
  /** A leaf for DNS names and IP addresses (CA:FALSE, serverAuth), valid for a day. */
  issue(names: readonly string[]): IssuedCert;
}

const IP = /^\d{1,3}(\.\d{1,3}){3}$|:/;

function openssl(args: readonly string[], cwd: string): void {
  try {
    execFileSync("openssl", args, { cwd, stdio: ["ignore", "ignore", "pipe"] });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOENT") throw new Error("fake-ngrok needs the openssl command to make its certificates (apt-get install openssl)");
    throw new Error(`openssl ${args[0]} failed: ${String((error as { stderr?: Buffer }).stderr ?? error)}`);
  }
}

/** Creates a CA (P-256, one day) in a temporary directory that is removed again at once. */
export function createTestCa(commonName = "fake-ngrok test CA"): TestCa {
  const dir = mkdtempSync(join(tmpdir(), "fake-ngrok-ca-"));
  try {
    openssl(["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "ca.key"], dir);
    openssl(
      ["req", "-x509", "-new", "-key", "ca.key", "-sha256", "-days", "1", "-subj", `/CN=${commonName}`, "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign", "-out", "ca.pem"],
      dir,
    );
    const caPem = readFileSync(join(dir, "ca.pem"), "utf8");
    const caKey = readFileSync(join(dir, "ca.key"), "utf8");
    return { caPem, issue: (names) => issueLeaf(caPem, caKey, names) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function issueLeaf(caPem: string, caKey: string, names: readonly string[]): IssuedCert {
  if (names.length === 0) throw new Error("a leaf certificate needs at least one name");
  const dir = mkdtempSync(join(tmpdir(), "fake-ngrok-leaf-"));
  try {
    writeFileSync(join(dir, "ca.pem"), caPem);
    writeFileSync(join(dir, "ca.key"), caKey);
    const san = names.map((n) => (IP.test(n) ? `IP:${n}` : `DNS:${n}`)).join(",");
    writeFileSync(
      join(dir, "leaf.ext"),
      `basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=${san}\n`,
    );
    openssl(["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "leaf.ec"], dir);
    // PKCS#8: what both Node and rustls read without ceremony.
    openssl(["pkcs8", "-topk8", "-nocrypt", "-in", "leaf.ec", "-out", "leaf.key"], dir);
    openssl(["req", "-new", "-key", "leaf.key", "-subj", `/CN=${names[0]}`, "-out", "leaf.csr"], dir);
    openssl(["x509", "-req", "-in", "leaf.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-days", "1", "-sha256", "-extfile", "leaf.ext", "-out", "leaf.pem"], dir);
    return { certPem: readFileSync(join(dir, "leaf.pem"), "utf8"), keyPem: readFileSync(join(dir, "leaf.key"), "utf8") };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
