// The owner's manifest preview: the Kubernetes objects the operator applies for the exocorp,
// as the API renders them in YAML (credential values already redacted by the API).
import { useState } from "preact/hooks";
import { getText } from "../api/client";
import { Alert, Loading, Modal } from "./ui";

export function ManifestPreview({ base }: { base: string }) {
  const [open, setOpen] = useState(false);
  const [yaml, setYaml] = useState<string | null>(null);
  const [error, setError] = useState<unknown>();
  const [copied, setCopied] = useState(false);

  const show = () => {
    setOpen(true);
    setYaml(null);
    setError(undefined);
    setCopied(false);
    // Fetched on each opening: the draft may have been saved since.
    getText(`${base}/manifest`, { format: "yaml" }).then(setYaml, setError);
  };
  const copy = async () => {
    if (yaml === null) return;
    await navigator.clipboard?.writeText(yaml).catch(() => undefined);
    setCopied(true);
  };

  return (
    <>
      <button type="button" onClick={show}>Preview manifest</button>
      {open && (
        <Modal title="Effective manifest" wide onClose={() => setOpen(false)}>
          <p class="muted">The Kubernetes objects the operator applies: from the saved draft before provisioning (or when it is newer than the last action), else from the running spec. Credential values are never shown.</p>
          <Alert error={error} />
          {yaml === null && error === undefined && <Loading what="the manifest" />}
          {yaml !== null && (
            <pre class="manifest-yaml" tabIndex={0} role="region" aria-label="Manifest (YAML, scrolls)" data-testid="manifest-yaml">{yaml}</pre>
          )}
          <div class="row">
            <button type="button" onClick={() => { void copy(); }} disabled={yaml === null}>{copied ? "Copied" : "Copy"}</button>
            <button type="button" onClick={() => setOpen(false)}>Close</button>
          </div>
        </Modal>
      )}
    </>
  );
}
