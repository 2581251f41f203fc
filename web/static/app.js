// chatmcp web: plain JavaScript, served by the local server (no third-party
// code). Message text is only ever inserted with textContent.
'use strict';
(function () {
  const csrf = document.querySelector('meta[name="csrf-token"]')?.content || '';

  function post(path, body) {
    return fetch(path, {
      method: 'POST', credentials: 'same-origin',
      headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': csrf },
      body: JSON.stringify(body),
    }).then(async (r) => {
      const j = await r.json().catch(() => ({}));
      if (!r.ok) throw new Error(j.error || ('HTTP ' + r.status));
      return j;
    });
  }

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function short(a) { return a.length <= 12 ? a : a.slice(0, 6) + '…' + a.slice(-4); }

  // Live updates: one EventSource per page.
  function live() {
    if (!document.getElementById('me')) return;
    const list = document.getElementById('messages');
    const es = new EventSource('/events?after=' + encodeURIComponent(document.body.dataset.after || '0'));
    es.addEventListener('message', (e) => {
      const ev = JSON.parse(e.data);
      if (list && list.dataset.conversation === ev.conversation) {
        if (list.querySelector('[data-seq="' + ev.seq + '"]')) return;
        if (ev.kind && ev.kind.startsWith('agent.')) {
          // Assistant messages are server-rendered: an approval request
          // with its Approve / Deny buttons, a reply with the tools it
          // called (and the requests it answered no longer pending).
          location.reload();
          return;
        }
        const li = el('li', 'message' + (ev.mine ? ' mine' : '') + (ev.state ? ' ' + ev.state : ''));
        li.dataset.seq = String(ev.seq);
        const meta = el('p', 'meta');
        meta.append(el('span', 'addr', ev.mine ? 'You' : short(ev.sender)), ' · ', el('time', '', ev.sent_at));
        li.append(meta);
        li.append(ev.state ? el('p', 'problem', ev.problem) : el('p', 'text', ev.text));
        list.append(li);
        document.getElementById('no-messages')?.remove();
        if (!ev.mine) {
          document.getElementById('live').textContent = 'New message from ' + short(ev.sender);
          const f = new FormData(); f.append('csrf', csrf); f.append('seq', String(ev.seq));
          fetch('/c/' + ev.conversation + '/seen', { method: 'POST', body: f, credentials: 'same-origin' });
        }
        return;
      }
      if (ev.mine) return;
      const badge = document.querySelector('[data-unread-for="' + ev.conversation + '"]');
      if (badge) {
        badge.textContent = String(ev.unread);
        badge.setAttribute('aria-label', ev.unread + ' unread');
        badge.hidden = ev.unread === 0;
      } else {
        const n = document.getElementById('new-activity');
        if (n) n.hidden = false;
      }
      document.getElementById('live').textContent = 'New message from ' + short(ev.sender);
    });
  }

  // Wallet Standard discovery (https://github.com/wallet-standard): wallets
  // register through window events; we list those that can sign messages.
  function wallets() {
    const box = document.getElementById('wallets');
    if (!box) return;
    const status = document.getElementById('wallet-status');
    const seen = new Set();
    function register(...ws) {
      for (const w of ws) {
        if (seen.has(w) || !w.features || !w.features['solana:signMessage'] || !w.features['standard:connect']) continue;
        seen.add(w);
        document.getElementById('no-wallets')?.remove();
        const b = el('button', 'wallet', 'Sign in with ' + w.name);
        b.type = 'button';
        b.addEventListener('click', () => signIn(w).catch((err) => { status.textContent = 'Sign-in failed: ' + err.message; }));
        box.append(b);
      }
      return () => {};
    }
    window.addEventListener('wallet-standard:register-wallet', (e) => { try { e.detail({ register }); } catch (_) {} });
    window.dispatchEvent(new CustomEvent('wallet-standard:app-ready', { detail: { register } }));
    setTimeout(() => {
      const n = document.getElementById('no-wallets');
      if (n) n.textContent = 'No browser wallet found. Install Phantom (or another Wallet Standard wallet) and reload, or use a keypair file.';
    }, 1500);

    const b64 = (u8) => btoa(String.fromCharCode(...u8));
    async function signIn(w) {
      status.textContent = 'Connecting to ' + w.name + '…';
      const { accounts } = await w.features['standard:connect'].connect();
      const account = accounts && accounts[0];
      if (!account) throw new Error('the wallet shared no account');
      const sign = async (text) => {
        const [out] = await w.features['solana:signMessage'].signMessage({ account, message: new TextEncoder().encode(text) });
        return b64(new Uint8Array(out.signature));
      };
      const start = await post('/signin/wallet/start', { address: account.address });
      status.textContent = 'Sign the certificate of this device in your wallet…';
      const cert = await post('/signin/wallet/cert', { signature: await sign(start.message) });
      status.textContent = 'Sign in to the relay in your wallet…';
      await post('/signin/wallet/finish', { signature: await sign(cert.message) });
      status.textContent = 'Signed in.';
      location.assign('/');
    }
  }

  document.addEventListener('DOMContentLoaded', () => { live(); wallets(); });
})();
