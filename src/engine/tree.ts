/**
 * Token trees: build one from ranked candidate sequences, check one, and derive what the
 * verification pass needs (positions and the ancestors-only attention mask). Pure functions.
 *
 * Conventions (see TokenTree in types.ts): nodes in topological order, node 0 = root (the pending
 * token), parents[0] = -1, depths[0] = 0. Children of a node are tried in ascending node-index
 * order; `buildTree` numbers nodes so that this order is the candidates' rank order.
 */
import type { TokenTree } from './types.js';

/** Additive mask value for "may not attend". */
export const MASKED = -Infinity;

/**
 * Trie of `candidates` (each a token sequence that would FOLLOW the root), merged on equal
 * prefixes so siblings are distinct; children ordered by the rank of the first candidate that
 * created them. Stops adding nodes once the tree has `budget` nodes (root included), so a
 * candidate may be cut to a prefix. `maxDepth` (optional) cuts every candidate at that depth.
 */
export function buildTree(
  root: number,
  candidates: readonly (readonly number[])[],
  budget: number,
  maxDepth = Infinity,
): TokenTree {
  const tree: TokenTree = { tokens: [root], parents: [-1], depths: [0] };
  // children[node] maps token -> child node index, for prefix merging.
  const children: Map<number, number>[] = [new Map()];
  for (const cand of candidates) {
    let node = 0;
    for (let j = 0; j < cand.length && j < maxDepth; j++) {
      const tok = cand[j];
      let next = children[node].get(tok);
      if (next === undefined) {
        if (tree.tokens.length >= budget) return tree;
        next = tree.tokens.length;
        tree.tokens.push(tok);
        tree.parents.push(node);
        tree.depths.push(tree.depths[node] + 1);
        children.push(new Map());
        children[node].set(tok, next);
      }
      node = next;
    }
  }
  return tree;
}

/** Children lists in node-index order. */
export function childrenOf(tree: TokenTree): number[][] {
  const out: number[][] = tree.tokens.map(() => []);
  for (let i = 1; i < tree.parents.length; i++) out[tree.parents[i]].push(i);
  return out;
}

/** Node indices from the root to `node`, root first. */
export function pathTo(tree: TokenTree, node: number): number[] {
  const path: number[] = [];
  for (let n = node; n >= 0; n = tree.parents[n]) path.push(n);
  return path.reverse();
}

/** Tokens along a path of node indices. */
export function pathTokens(tree: TokenTree, path: readonly number[]): number[] {
  return path.map((n) => tree.tokens[n]);
}

/** Throws unless the tree follows the conventions; drafters are external code. */
export function validateTree(tree: TokenTree, root?: number, budget?: number): void {
  const n = tree.tokens.length;
  if (n < 1 || tree.parents.length !== n || tree.depths.length !== n) throw new Error('tree: bad lengths');
  if (budget !== undefined && n > budget) throw new Error(`tree: ${n} nodes exceed the budget of ${budget}`);
  if (tree.parents[0] !== -1 || tree.depths[0] !== 0) throw new Error('tree: node 0 must be the root');
  if (root !== undefined && tree.tokens[0] !== root) throw new Error('tree: root is not the pending token');
  const seen = new Set<string>();
  for (let i = 1; i < n; i++) {
    const p = tree.parents[i];
    if (!(p >= 0 && p < i)) throw new Error(`tree: node ${i} has parent ${p} (must precede it)`);
    if (tree.depths[i] !== tree.depths[p] + 1) throw new Error(`tree: node ${i} has a wrong depth`);
    const key = `${p}:${tree.tokens[i]}`;
    if (seen.has(key)) throw new Error(`tree: node ${i} duplicates a sibling token`);
    seen.add(key);
  }
}

/** Keeps nodes with depth <= maxDepth (a subtree: topology and relative order preserved). */
export function cutDepth(tree: TokenTree, maxDepth: number): TokenTree {
  if (tree.depths.every((d) => d <= maxDepth)) return tree;
  const remap = new Int32Array(tree.tokens.length).fill(-1);
  const out: TokenTree = { tokens: [], parents: [], depths: [] };
  for (let i = 0; i < tree.tokens.length; i++) {
    if (tree.depths[i] > maxDepth) continue;
    remap[i] = out.tokens.length;
    out.tokens.push(tree.tokens[i]);
    out.parents.push(i === 0 ? -1 : remap[tree.parents[i]]);
    out.depths.push(tree.depths[i]);
  }
  return out;
}

/** Keeps the first `budget` nodes (parents precede children, so this is a valid subtree). */
export function cutBudget(tree: TokenTree, budget: number): TokenTree {
  if (tree.tokens.length <= budget) return tree;
  const n = Math.max(1, budget);
  return { tokens: tree.tokens.slice(0, n), parents: tree.parents.slice(0, n), depths: tree.depths.slice(0, n) };
}

/** Position ids of the nodes when `past` tokens are cached: past + depth. */
export function treePositions(tree: TokenTree, past: number): number[] {
  return tree.depths.map((d) => past + d);
}

/**
 * Additive attention mask among the tree's S nodes, [S * S] row-major: row i = node i sees its
 * ancestors and itself (0 = attend, MASKED = not). The cached positions before the tree are
 * always visible and take no mask entries.
 */
export function treeMask(tree: TokenTree): Float32Array {
  const S = tree.tokens.length;
  const mask = new Float32Array(S * S).fill(MASKED);
  for (let i = 0; i < S; i++) {
    for (let a = i; a >= 0; a = tree.parents[a]) mask[i * S + a] = 0;
  }
  return mask;
}

/** Causal mask [S * S] for a plain sequence of S new tokens (after any cached ones). */
export function causalMask(S: number): Float32Array {
  const mask = new Float32Array(S * S).fill(MASKED);
  for (let i = 0; i < S; i++) mask.fill(0, i * S, i * S + i + 1);
  return mask;
}

/** A chain (each node the child of the previous): the tree of a plain token sequence. */
export function chainTree(tokens: readonly number[]): TokenTree {
  return {
    tokens: [...tokens],
    parents: tokens.map((_, i) => i - 1),
    depths: tokens.map((_, i) => i),
  };
}
