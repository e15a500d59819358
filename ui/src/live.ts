// Server-sent events from the gateway's watch cache. EventSource reconnects by itself after a
// dropped connection (the server says `retry: 2000`); when the browser gives up (the gateway
// answered an error while restarting), we open a new one after a short, growing delay.
import { useEffect, useState } from "preact/hooks";

export type LiveState = "connecting" | "live" | "reconnecting";

export interface LiveHandlers {
  onEvent: (type: string, data: unknown) => void;
  onState?: (state: LiveState) => void;
}

export function subscribe(url: string, events: string[], handlers: LiveHandlers): () => void {
  let source: EventSource | null = null;
  let closed = false;
  let timer: number | undefined;
  let delay = 1000;

  const open = () => {
    if (closed) return;
    handlers.onState?.("connecting");
    const es = new EventSource(url, { withCredentials: true });
    source = es;
    es.onopen = () => {
      delay = 1000;
      handlers.onState?.("live");
    };
    for (const name of events) {
      es.addEventListener(name, (e) => {
        const message = e as MessageEvent<string>;
        try {
          handlers.onEvent(name, JSON.parse(message.data));
        } catch {
          /* a malformed frame is ignored; the next one carries the full state */
        }
      });
    }
    es.onerror = () => {
      handlers.onState?.("reconnecting");
      if (es.readyState === EventSource.CLOSED) {
        es.close();
        timer = window.setTimeout(open, delay);
        delay = Math.min(delay * 2, 10000);
      }
    };
  };
  open();
  return () => {
    closed = true;
    window.clearTimeout(timer);
    source?.close();
  };
}

export function useLive(url: string | null, events: string[], onEvent: LiveHandlers["onEvent"]): LiveState {
  const [state, setState] = useState<LiveState>("connecting");
  useEffect(() => {
    if (!url) return undefined;
    return subscribe(url, events, { onEvent, onState: setState });
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [url]);
  return state;
}
