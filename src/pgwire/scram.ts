/**
 * The server's side of a SCRAM-SHA-256 exchange (RFC 5802, RFC 7677, as PostgreSQL speaks it): the client
 * proves it knows the password (a token) without sending it, and the server proves it holds the verifier.
 * Only the verifier is needed here: salt, iteration count, StoredKey and ServerKey.
 *
 * Channel binding (SCRAM-SHA-256-PLUS) is not offered: a client that asks for it ('p=') is refused, and one
 * that could use it but sees it is not offered ('y') goes on without, as libpq over TLS does.
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { ScramVerifier } from '../security/index.js';
import { ProtocolViolation } from './protocol.js';

/** The one SASL mechanism offered. */
export const SCRAM_SHA_256 = 'SCRAM-SHA-256';

/** The longest client-first or client-final message read: real ones are under 200 bytes. */
const MAX_SCRAM_MESSAGE = 4096;

/** Printable ASCII but ',': what a nonce may hold. */
const NONCE = /^[\x21-\x2b\x2d-\x7e]+$/;

/** One exchange, from the client-first-message to the server-final-message. */
export class ScramExchange {
  private constructor(
    private readonly verifier: ScramVerifier,
    /** The gs2 header (`n,,` or `y,,`), which the client-final-message's channel binding repeats. */
    private readonly gs2Header: string,
    private readonly clientFirstBare: string,
    private readonly nonce: string,
    /** What the server answers the client-first-message with (AuthenticationSASLContinue). */
    readonly serverFirst: string,
  ) {}

  /** Reads the client-first-message (of a SASLInitialResponse) and makes the server-first-message. */
  static start(clientFirst: string, verifier: ScramVerifier): ScramExchange {
    if (clientFirst.length > MAX_SCRAM_MESSAGE) throw new ProtocolViolation('the SCRAM client-first-message is too long');
    const header = /^([ny]|p=[^,]*),([^,]*),/.exec(clientFirst);
    if (header === null) throw new ProtocolViolation('malformed SCRAM client-first-message');
    if (header[1]!.startsWith('p=')) {
      throw new ProtocolViolation('channel binding was requested, but Strata does not offer SCRAM-SHA-256-PLUS');
    }
    if (header[2] !== '') throw new ProtocolViolation('SCRAM authorization identities are not supported');
    const gs2Header = header[0];
    const bare = clientFirst.slice(gs2Header.length);
    const attributes = bare.split(',');
    // [reserved-mext ","] username "," nonce ["," extensions]: a mandatory extension cannot be honoured.
    if (attributes[0]?.startsWith('m=')) throw new ProtocolViolation('SCRAM mandatory extensions are not supported');
    // The user name is the start-up packet's, as PostgreSQL has it; libpq sends `n=` empty.
    if (!attributes[0]?.startsWith('n=') || !attributes[1]?.startsWith('r=')) throw new ProtocolViolation('malformed SCRAM client-first-message');
    const clientNonce = attributes[1].slice(2);
    if (!NONCE.test(clientNonce)) throw new ProtocolViolation('malformed SCRAM nonce');
    const nonce = clientNonce + randomBytes(18).toString('base64');
    const serverFirst = `r=${nonce},s=${verifier.salt},i=${verifier.iterations}`;
    return new ScramExchange(verifier, gs2Header, bare, nonce, serverFirst);
  }

  /**
   * Checks the client-final-message (of a SASLResponse): answers the server-final-message when the proof
   * matches the verifier, null when it does not (a wrong password). A message that breaks the exchange throws.
   */
  finish(clientFinal: string): string | null {
    if (clientFinal.length > MAX_SCRAM_MESSAGE) throw new ProtocolViolation('the SCRAM client-final-message is too long');
    const proofAt = clientFinal.lastIndexOf(',p=');
    if (proofAt === -1) throw new ProtocolViolation('malformed SCRAM client-final-message');
    const withoutProof = clientFinal.slice(0, proofAt);
    const [binding, nonce] = withoutProof.split(',');
    if (binding !== `c=${Buffer.from(this.gs2Header).toString('base64')}`) throw new ProtocolViolation('SCRAM channel binding does not match');
    if (nonce !== `r=${this.nonce}`) throw new ProtocolViolation('unexpected SCRAM nonce');
    const proof = Buffer.from(clientFinal.slice(proofAt + 3), 'base64');
    const authMessage = `${this.clientFirstBare},${this.serverFirst},${withoutProof}`;
    const storedKey = Buffer.from(this.verifier.storedKey, 'base64');
    const signature = createHmac('sha256', storedKey).update(authMessage).digest();
    if (proof.length !== signature.length || storedKey.length !== signature.length) return null;
    // ClientKey = ClientProof XOR ClientSignature; the proof is good when H(ClientKey) is the StoredKey.
    const clientKey = Buffer.alloc(proof.length);
    for (let i = 0; i < proof.length; i++) clientKey[i] = proof[i]! ^ signature[i]!;
    if (!timingSafeEqual(createHash('sha256').update(clientKey).digest(), storedKey)) return null;
    const serverSignature = createHmac('sha256', Buffer.from(this.verifier.serverKey, 'base64')).update(authMessage).digest();
    return `v=${serverSignature.toString('base64')}`;
  }
}
