// Which Envoy fake-envoy stands in for: the release whose API the validator checks against
// (go-control-plane/envoy vX.Y.Z tracks Envoy X.Y.Z). Envoy's build version reads
// `<revision>/<version>/<status>/<build type>/<ssl>`; the revision says it is the fake.
import { pinnedVersions } from "@ktube/envoy-validator";

export function envoyVersion(): string {
  return pinnedVersions().goControlPlane.replace(/^v/, "");
}

export function buildVersion(): string {
  return `fake-envoy/${envoyVersion()}/Clean/RELEASE/BoringSSL`;
}

/** What `envoy --version` prints. */
export function versionText(): string {
  return `\nenvoy  version: ${buildVersion()}\n\n`;
}
