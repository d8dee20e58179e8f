// The `fernet` npm package ships no types; the part the tests use.
declare module "fernet" {
  export class Secret {
    constructor(secret64: string);
  }
  export class Token {
    constructor(opts: {
      secret: Secret;
      time?: string;
      iv?: number[];
      token?: string;
      ttl?: number;
    });
    encode(message: string): string;
    decode(token?: string): string;
  }
}
