// A loopback Solana JSON-RPC server over litesvm, for ChatMCP's payment
// tests only (TEST INFRASTRUCTURE: one in-process Solana runtime with the
// standard SPL programs — Token, Token-2022, Associated Token Account,
// Memo — loaded; not a validator, no consensus, no persistence).
//
// It implements the methods ChatMCP calls: getLatestBlockhash,
// sendTransaction, simulateTransaction, getSignatureStatuses,
// getAccountInfo, getTokenAccountBalance, getMinimumBalanceForRentExemption
// and requestAirdrop; and one
// test-only method, chatmcpTest_expireBlockhash, which moves the runtime
// to a new blockhash so that transactions built on the old one are
// refused (BlockhashNotFound).
//
// Usage: node rpc.mjs — it listens on 127.0.0.1 on a free port and prints
// "listening http://127.0.0.1:PORT" on stdout once ready.
import http from "node:http";
import { LiteSVM } from "litesvm";
import { address, getBase58Decoder, getBase58Encoder, getTransactionDecoder, lamports } from "@solana/kit";

const svm = new LiteSVM().withSigverify(true).withBlockhashCheck(true).withTransactionHistory(10000n);
const b58 = getBase58Decoder();
const b58enc = getBase58Encoder();
const txDecoder = getTransactionDecoder();
// Blockhashes the runtime has used, so that an expired one is reported as
// such (real clusters keep ~150).
const blockhashes = [svm.latestBlockhash()];
let slot = 1n;

function rpcError(code, message, data) {
  const e = new Error(message);
  e.rpc = { code, message, data };
  return e;
}

function decodeTx(b64) {
  if (typeof b64 !== "string") throw rpcError(-32602, "transaction must be a base64 string");
  const bytes = Buffer.from(b64, "base64");
  if (bytes.length === 0 || bytes.length > 1232) throw rpcError(-32602, `transaction of ${bytes.length} bytes`);
  try {
    return txDecoder.decode(new Uint8Array(bytes));
  } catch (e) {
    throw rpcError(-32602, `failed to deserialize transaction: ${e.message}`);
  }
}

function firstSignature(tx) {
  const sigs = Object.values(tx.signatures);
  return sigs[0] ? b58.decode(sigs[0]) : null;
}

function errOf(failed) {
  const s = failed.toString();
  const m = /err: ([A-Za-z]+(\([^)]*\))?)/.exec(s);
  const name = m ? m[1] : s;
  return { text: name, logs: failed.meta().logs() };
}

function ctx() {
  return { context: { slot: Number(slot) } };
}

const methods = {
  getLatestBlockhash() {
    return { ...ctx(), value: { blockhash: svm.latestBlockhash(), lastValidBlockHeight: Number(slot) + 150 } };
  },
  sendTransaction([b64]) {
    const tx = decodeTx(b64);
    const res = svm.sendTransaction(tx);
    if (res.constructor.name === "FailedTransactionMetadata") {
      const { text, logs } = errOf(res);
      throw rpcError(-32002, `Transaction simulation failed: ${text}`, { err: text, logs });
    }
    slot++;
    return firstSignature(tx);
  },
  simulateTransaction([b64, opts]) {
    const tx = decodeTx(b64);
    const sigVerify = !(opts && opts.sigVerify === false);
    if (!sigVerify) svm.withSigverify(false);
    let res;
    try {
      res = svm.simulateTransaction(tx);
    } finally {
      if (!sigVerify) svm.withSigverify(true);
    }
    if (res.constructor.name === "FailedTransactionMetadata") {
      const { text, logs } = errOf(res);
      return { ...ctx(), value: { err: text, logs, unitsConsumed: 0 } };
    }
    const meta = res.meta();
    return { ...ctx(), value: { err: null, logs: meta.logs(), unitsConsumed: Number(meta.computeUnitsConsumed()) } };
  },
  getSignatureStatuses([sigs]) {
    if (!Array.isArray(sigs)) throw rpcError(-32602, "signatures must be an array");
    return {
      ...ctx(),
      value: sigs.map((s) => {
        let meta;
        try {
          meta = svm.getTransaction(s);
        } catch {
          return null;
        }
        if (!meta) return null;
        const failed = meta.constructor.name === "FailedTransactionMetadata";
        return { slot: Number(slot), confirmations: null, err: failed ? errOf(meta).text : null, confirmationStatus: "finalized" };
      }),
    };
  },
  getAccountInfo([addr]) {
    const acc = svm.getAccount(address(addr));
    if (!acc.exists) return { ...ctx(), value: null };
    return {
      ...ctx(),
      value: {
        lamports: Number(acc.lamports),
        owner: acc.programAddress,
        data: [Buffer.from(acc.data).toString("base64"), "base64"],
        executable: acc.executable,
        rentEpoch: 0,
        space: acc.data.length,
      },
    };
  },
  getTokenAccountBalance([addr]) {
    const acc = svm.getAccount(address(addr));
    if (!acc.exists || acc.data.length < 72) throw rpcError(-32602, "Invalid param: could not find account");
    const data = Buffer.from(acc.data);
    const mint = b58.decode(data.subarray(0, 32));
    const mintAcc = svm.getAccount(address(mint));
    const decimals = mintAcc.exists ? mintAcc.data[44] : 0;
    const amount = data.readBigUInt64LE(64).toString();
    return { ...ctx(), value: { amount, decimals, uiAmount: null, uiAmountString: amount } };
  },
  getMinimumBalanceForRentExemption([size]) {
    return Number(svm.minimumBalanceForRentExemption(BigInt(size)));
  },
  requestAirdrop([addr, amount]) {
    const res = svm.airdrop(address(addr), lamports(BigInt(amount)));
    if (!res || res.constructor.name === "FailedTransactionMetadata") throw rpcError(-32603, "airdrop failed");
    slot++;
    return b58.decode(res.signature());
  },
  chatmcpTest_expireBlockhash() {
    svm.expireBlockhash();
    blockhashes.push(svm.latestBlockhash());
    slot++;
    return svm.latestBlockhash();
  },
};

const server = http.createServer((req, res) => {
  if (req.method !== "POST") {
    res.writeHead(405).end();
    return;
  }
  const chunks = [];
  let size = 0;
  req.on("data", (c) => {
    size += c.length;
    if (size > 1 << 20) req.destroy();
    else chunks.push(c);
  });
  req.on("end", () => {
    let id = null;
    let out;
    try {
      const msg = JSON.parse(Buffer.concat(chunks).toString("utf8"));
      id = msg.id ?? null;
      const fn = methods[msg.method];
      if (!fn) throw rpcError(-32601, `Method not found: ${msg.method}`);
      out = { jsonrpc: "2.0", id, result: fn(msg.params ?? []) };
    } catch (e) {
      const err = e.rpc ?? { code: -32603, message: String(e && e.message ? e.message : e) };
      out = { jsonrpc: "2.0", id, error: err };
    }
    res.writeHead(200, { "Content-Type": "application/json" });
    res.end(JSON.stringify(out, (_, v) => (typeof v === "bigint" ? Number(v) : v)));
  });
});

server.listen(0, "127.0.0.1", () => {
  process.stdout.write(`listening http://127.0.0.1:${server.address().port}\n`);
});
process.stdin.on("end", () => process.exit(0));
process.stdin.resume();
