"""JavaScript the browser benchmarks run in the page: times taken there carry no Python polling delay."""

# Installed before the app loads: notes when websocket messages from the server arrive, and the first
# one after the Enter keydown that carries `window.__bench.needle` (the text the test waits for).
WEBSOCKET_HOOK = """(() => {
  const Native = window.WebSocket;
  const decoder = new TextDecoder();
  window.WebSocket = class extends Native {
    constructor(...args) {
      super(...args);
      this.addEventListener('message', (event) => {
        const probe = window.__bench;
        if (!probe || probe.sent === null) return;
        const now = performance.now();
        probe.wsFirst ??= now;
        if (probe.needle && probe.wsNeedle === null && event.data instanceof ArrayBuffer
            && decoder.decode(event.data).includes(probe.needle)) probe.wsNeedle = now;
      });
    }
  };
})();"""

# Installed once the app is up: the Enter keydown in the chat input starts a round; a MutationObserver
# notes when the newest assistant bubble first shows text, and when it shows the needle.
CHAT_PROBE = """() => {
  window.__bench = {sent: null};
  const probe = window.__bench;
  let before = new Set();  // the assistant bubbles on screen at Enter (kept out of the probe's data)
  const replies = () => document.querySelectorAll(
    '[data-testid="stChatMessage"]:has([data-testid="stChatMessageAvatarAssistant"])');
  document.addEventListener('keydown', (event) => {
    if (event.key !== 'Enter' || !event.target.closest('[data-testid="stChatInput"]')) return;
    Object.assign(probe, {sent: performance.now(), first: null, shown: null, wsFirst: null,
                          wsNeedle: null});
    before = new Set(replies());
  }, true);
  new MutationObserver(() => {
    if (probe.sent === null || probe.shown !== null) return;
    // The reply's bubble is one that was not there at Enter: the bot's greeting is gone once a
    // message is sent, so counting bubbles would never see a new one in an empty chat.
    const fresh = [...replies()].filter((bubble) => !before.has(bubble));
    if (!fresh.length) return;
    const box = fresh[fresh.length - 1].querySelector('[data-testid="stMarkdownContainer"]');
    const text = box ? box.textContent : '';
    if (probe.first === null && text.trim()) probe.first = performance.now();
    if (probe.needle && text.includes(probe.needle)) probe.shown = performance.now();
  }).observe(document.body, {childList: true, subtree: true, characterData: true});
}"""

# Streamlit's rerun key "r": notes when the app's script state first shows each value afterwards.
RERUN_PROBE = """() => {
  const probe = window.__rerun = {pressed: null, states: {}, idle: null};
  const app = document.querySelector('[data-testid="stApp"]');
  document.addEventListener('keydown', (event) => {
    if (event.key === 'r') Object.assign(probe, {pressed: performance.now(), states: {}, idle: null});
  }, true);
  new MutationObserver(() => {
    if (probe.pressed === null || probe.idle !== null) return;
    const state = app.getAttribute('data-test-script-state');
    probe.states[state] ??= performance.now();
    if (state === 'notRunning') probe.idle = performance.now();
  }).observe(app, {attributes: true, attributeFilter: ['data-test-script-state']});
}"""
