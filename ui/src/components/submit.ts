// One place for what every form does on submit: busy while the request runs, the error when it
// fails (with the API's per-field messages for the inputs), cleared when it is tried again.
import { useState } from "preact/hooks";
import { ApiError } from "../api/client";

export interface Submission {
  busy: boolean;
  error: unknown;
  /** field -> message, from a 400/422 problem's `errors`. */
  errors: Record<string, string>;
  submit: (e?: Event) => Promise<void>;
  setError: (error: unknown) => void;
}

/** `work` runs on submit; what it throws is shown (through `explain`, when given). */
export function useSubmit(work: () => Promise<void>, explain: (error: unknown) => unknown = (e) => e): Submission {
  const [error, setError] = useState<unknown>();
  const [busy, setBusy] = useState(false);
  const submit = async (e?: Event) => {
    e?.preventDefault();
    setBusy(true);
    setError(undefined);
    try {
      await work();
    } catch (err) {
      setError(explain(err));
    } finally {
      setBusy(false);
    }
  };
  const errors = error instanceof ApiError ? error.fieldErrors() : {};
  return { busy, error, errors, submit, setError };
}
