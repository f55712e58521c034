/**
 * One typed, totally ordered position per source, with compare / serialize /
 * parse. Sources declare theirs; the runtime stores positions only in their
 * serialized form and asks the source to parse them back.
 */
export interface PositionCodec<P> {
  compare(a: P, b: P): number;
  serialize(p: P): string;
  parse(text: string): P;
}
