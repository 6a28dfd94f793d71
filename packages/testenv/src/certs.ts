// Certificates for the test control plane: a CA, the API server's serving
// certificate, an admin client certificate (group system:masters) and the
// service-account signing key. Keys come from node:crypto; the X.509 signing is
// done by the openssl CLI, since node:crypto cannot issue certificates.
import { execFile } from "node:child_process";
import { createPublicKey, generateKeyPairSync } from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { TestenvSetupError } from "./binaries.ts";

const run = promisify(execFile);

export interface Pki {
  caCert: string;
  caKey: string;
  servingCert: string;
  servingKey: string;
  adminCert: string;
  adminKey: string;
  serviceAccountKey: string;
  serviceAccountPub: string;
}

function writeKey(dir: string, name: string): string {
  const { privateKey } = generateKeyPairSync("ec", { namedCurve: "prime256v1" });
  const path = join(dir, `${name}.key`);
  writeFileSync(path, privateKey.export({ type: "pkcs8", format: "pem" }), { mode: 0o600 });
  return path;
}

async function openssl(args: string[]): Promise<void> {
  try {
    await run("openssl", args);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") {
      throw new TestenvSetupError("packages/testenv needs the openssl CLI to issue test certificates: apt-get install openssl");
    }
    throw error;
  }
}

export async function createPki(dir: string): Promise<Pki> {
  const caKey = writeKey(dir, "ca");
  const caCert = join(dir, "ca.crt");
  await openssl(["req", "-x509", "-new", "-key", caKey, "-out", caCert, "-days", "30", "-subj", "/CN=ktube-testenv-ca",
    "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"]);

  const issue = async (name: string, subject: string, extensions: string[]): Promise<[string, string]> => {
    const key = writeKey(dir, name);
    const cert = join(dir, `${name}.crt`);
    await openssl(["req", "-x509", "-new", "-key", key, "-out", cert, "-days", "30", "-subj", subject,
      "-CA", caCert, "-CAkey", caKey, ...extensions.flatMap((e) => ["-addext", e])]);
    return [cert, key];
  };
  const [servingCert, servingKey] = await issue("apiserver", "/CN=kube-apiserver", [
    "subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc",
    "extendedKeyUsage=serverAuth",
    "basicConstraints=critical,CA:FALSE",
  ]);
  const [adminCert, adminKey] = await issue("admin", "/O=system:masters/CN=ktube-testenv-admin", [
    "extendedKeyUsage=clientAuth",
    "basicConstraints=critical,CA:FALSE",
  ]);

  const serviceAccountKey = writeKey(dir, "service-account");
  const serviceAccountPub = join(dir, "service-account.pub");
  writeFileSync(serviceAccountPub, createPublicKey(readFileSync(serviceAccountKey)).export({ type: "spki", format: "pem" }));
  for (const file of [caCert, servingCert, adminCert]) {
    if (!existsSync(file)) throw new TestenvSetupError(`openssl did not write ${file}`);
  }
  return { caCert, caKey, servingCert, servingKey, adminCert, adminKey, serviceAccountKey, serviceAccountPub };
}

export interface IssuedCertificate {
  /** PEM */
  cert: string;
  /** PEM (PKCS#8) */
  key: string;
}

export interface TestCa {
  /** The CA certificate, PEM. */
  cert: string;
  /** A leaf certificate signed by this CA: a server's (IP and DNS names as SANs) or, with `client`, a client's. */
  issue(commonName: string, options?: { ipAddresses?: string[]; dnsNames?: string[]; client?: boolean }): Promise<IssuedCertificate>;
}

/** A throwaway CA in `dir` for TLS in tests (servers the VPS downloads from, TLS offload, mutual TLS). */
export async function createTestCa(dir: string, name = "ktube-test-ca"): Promise<TestCa> {
  const caKey = writeKey(dir, name);
  const caCert = join(dir, `${name}.crt`);
  await openssl(["req", "-x509", "-new", "-key", caKey, "-out", caCert, "-days", "30", "-subj", `/CN=${name}`,
    "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"]);
  let serial = 0;
  return {
    cert: readFileSync(caCert, "utf8"),
    async issue(commonName, options = {}) {
      const file = `${name}-leaf-${++serial}`;
      const key = writeKey(dir, file);
      const cert = join(dir, `${file}.crt`);
      const sans = [...(options.ipAddresses ?? []).map((ip) => `IP:${ip}`), ...(options.dnsNames ?? []).map((dns) => `DNS:${dns}`)];
      await openssl(["req", "-x509", "-new", "-key", key, "-out", cert, "-days", "30", "-subj", `/CN=${commonName}`,
        "-CA", caCert, "-CAkey", caKey, "-addext", "basicConstraints=critical,CA:FALSE",
        "-addext", `extendedKeyUsage=${options.client ? "clientAuth" : "serverAuth"}`,
        ...(sans.length > 0 ? ["-addext", `subjectAltName=${sans.join(",")}`] : [])]);
      return { cert: readFileSync(cert, "utf8"), key: readFileSync(key, "utf8") };
    },
  };
}
