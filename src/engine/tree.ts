/**
 * Token trees: build one from ranked candidate sequences, check one, and derive what the
 * verification pass needs (positions and the ancestors-only attention mask); and weighted trees,
 * what the drafters build (tries of weighted sequences, merged sources) and cut where expected
 * tokens per unit of cost peak (bestTreeSize / costCut). Pure functions.
 *
 * Conventions (see TokenTree in types.ts): nodes in topological order, node 0 = root (the pending
 * token), parents[0] = -1, depths[0] = 0. Children of a node are tried in ascending node-index
 * order; `buildTree` numbers nodes so that this order is the candidates' rank order.
 */
import type { TokenTree } from './types.js';

/** Additive mask value for "may not attend". */
export const MASKED = -Infinity;

/** The tree of the pending token alone (plain decoding, or nothing worth drafting). */
export function rootOnly(root: number): TokenTree {
  return { tokens: [root], parents: [-1], depths: [0] };
}

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
  const tree = rootOnly(root);
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
  const q = tree.proposals;
  if (q) {
    if (q.length !== n || q[0] !== undefined) throw new Error('tree: proposals must have one entry per node, none for the root');
    for (let i = 1; i < n; i++) {
      // a sampled token was drawn from q: q gives it mass, or the verifier's ratio p/q is undefined
      if (q[i] && !(q[i]![tree.tokens[i]] > 0)) throw new Error(`tree: node ${i}'s token has no mass in its proposal`);
    }
  }
}

/** Keeps nodes with depth <= maxDepth (a subtree: topology and relative order preserved). */
export function cutDepth(tree: TokenTree, maxDepth: number): TokenTree {
  if (tree.depths.every((d) => d <= maxDepth)) return tree;
  const remap = new Int32Array(tree.tokens.length).fill(-1);
  const out: TokenTree = { tokens: [], parents: [], depths: [] };
  const proposals: (Float64Array | undefined)[] = [];
  for (let i = 0; i < tree.tokens.length; i++) {
    if (tree.depths[i] > maxDepth) continue; // a whole depth goes: sibling lists stay whole
    remap[i] = out.tokens.length;
    out.tokens.push(tree.tokens[i]);
    out.parents.push(i === 0 ? -1 : remap[tree.parents[i]]);
    out.depths.push(tree.depths[i]);
    proposals.push(tree.proposals?.[i]);
  }
  if (tree.proposals) out.proposals = proposals;
  return out;
}

/** Keeps the first `budget` nodes (parents precede children, so this is a valid subtree). */
export function cutBudget(tree: TokenTree, budget: number): TokenTree {
  if (tree.tokens.length <= budget) return tree;
  return firstNodes(tree, Math.max(1, budget));
}

/** A new tree of the first n nodes (a valid tree when nodes are in topological order). */
export function firstNodes(tree: TokenTree, n: number): TokenTree {
  const out: TokenTree = { tokens: tree.tokens.slice(0, n), parents: tree.parents.slice(0, n), depths: tree.depths.slice(0, n) };
  if (tree.proposals) out.proposals = tree.proposals.slice(0, n);
  return out;
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

/** A tree whose node i carries an estimate weights[i] of P(node i is accepted), best-first. */
export interface WeightedTree extends TokenTree {
  weights: number[];
}

/** A trie to select a tree from (node 0 = the root); accessors by trie id. */
export interface Trie {
  token(id: number): number;
  depth(id: number): number;
  weight(id: number): number;
  /** Calls `visit` with each child of `id`. */
  children(id: number, visit: (child: number) => void): void;
}

/**
 * Best-first selection from a trie: the root, then again and again the best node of the
 * frontier (the children of the nodes taken so far), until `budget` nodes (root included), no
 * frontier, or `take(best)` is false. `before(a, b)`: trie node a is better than b, a strict
 * total order (so the frontier's order does not matter). The result is ancestor-closed and in
 * topological (best-first) order; weights[0] = rootWeight, the others the trie's.
 */
export function bestFirst(
  trie: Trie,
  root: number,
  rootWeight: number,
  budget: number,
  before: (a: number, b: number) => boolean,
  take: (id: number) => boolean = () => true,
): WeightedTree {
  const tree: WeightedTree = { ...rootOnly(root), weights: [rootWeight] };
  const frontier: number[] = []; // trie ids
  const parentAt: number[] = []; // tree index of each frontier node's parent
  const enter = (parent: number) => (child: number) => {
    frontier.push(child);
    parentAt.push(parent);
  };
  trie.children(0, enter(0));
  while (tree.tokens.length < budget && frontier.length > 0) {
    let bi = 0;
    for (let i = 1; i < frontier.length; i++) if (before(frontier[i], frontier[bi])) bi = i;
    const id = frontier[bi];
    if (!take(id)) break;
    const idx = tree.tokens.length;
    tree.tokens.push(trie.token(id));
    tree.parents.push(parentAt[bi]);
    tree.depths.push(trie.depth(id));
    tree.weights.push(trie.weight(id));
    frontier[bi] = frontier[frontier.length - 1];
    frontier.pop();
    parentAt[bi] = parentAt[parentAt.length - 1];
    parentAt.pop();
    trie.children(id, enter(idx));
  }
  return tree;
}

/**
 * One tree from several drafters' weighted trees (same root): the union trie, where a node both
 * sources propose gets 1 - (1 - a)(1 - b) (either source right: treated as independent
 * evidence), then best-first by weight up to `budget` nodes. Each source's weights do not grow
 * along a path, so neither do the merged ones and every best-first prefix is ancestor-closed.
 * Returns nodes in best-first (hence topological) order with their merged weights.
 */
export function mergeWeightedTrees(trees: readonly WeightedTree[], budget: number): WeightedTree {
  const root = trees[0].tokens[0];
  const tToken: number[] = [root];
  const tDepth: number[] = [0];
  const tMiss: number[] = [1]; // prod (1 - w) over sources proposing the node
  const tChildren: Map<number, number>[] = [new Map()];
  for (const t of trees) {
    if (t.tokens[0] !== root) throw new Error('mergeWeightedTrees: trees with different roots');
    const at = new Int32Array(t.tokens.length); // the source node's trie id
    for (let i = 1; i < t.tokens.length; i++) {
      const p = at[t.parents[i]];
      let id = tChildren[p].get(t.tokens[i]);
      if (id === undefined) {
        id = tToken.length;
        tToken.push(t.tokens[i]);
        tDepth.push(tDepth[p] + 1);
        tMiss.push(1);
        tChildren.push(new Map());
        tChildren[p].set(t.tokens[i], id);
      }
      tMiss[id] *= 1 - Math.min(1, Math.max(0, t.weights[i]));
      at[i] = id;
    }
  }
  return bestFirst(
    {
      token: (id) => tToken[id],
      depth: (id) => tDepth[id],
      weight: (id) => 1 - tMiss[id],
      children: (id, visit) => {
        for (const c of tChildren[id].values()) visit(c);
      },
    },
    root,
    1,
    budget,
    (a, b) => tMiss[a] < tMiss[b] || (tMiss[a] === tMiss[b] && (tDepth[a] < tDepth[b] || (tDepth[a] === tDepth[b] && a < b))),
  );
}

/** A weighted draft sequence (tokens after the root). */
export interface WeightedSequence {
  tokens: readonly number[];
  /** Non-negative weight, e.g. a probability. */
  weight: number;
  /** Per-sequence depth decay (overrides the options' depthDecay). */
  decay?: number;
}

export interface TreeFromSequencesOptions {
  /** Max nodes incl. the root. */
  budget: number;
  /** Drop nodes whose accumulated weight is below this (adaptive drafting). Default 0. */
  minWeight?: number;
  /** Deepest draft token kept (0 = unlimited). */
  maxDepth?: number;
  /** A sequence contributes weight * depthDecay^(d-1) at depth d (default 1: no decay). */
  depthDecay?: number;
}

/**
 * Merges weighted sequences into a trie (equal prefixes merged, siblings distinct), each node
 * weighted by the sum of the weights of the sequences through it, then keeps the best nodes:
 * best-first from the frontier of the kept subtree (so the result is always a connected, ancestor-
 * closed tree in topological order), ties broken by depth then insertion order, until `budget` nodes
 * (root included) or until the best frontier node weighs less than `minWeight`.
 */
export function treeFromSequences(root: number, seqs: readonly WeightedSequence[], opts: TreeFromSequencesOptions): WeightedTree {
  const budget = Math.max(1, Math.floor(opts.budget));
  const minWeight = opts.minWeight ?? 0;
  const maxDepth = opts.maxDepth ?? 0;
  const decay = opts.depthDecay ?? 1;
  // trie
  const tToken: number[] = [root];
  const tDepth: number[] = [0];
  const tWeight: number[] = [0];
  const tChildren: number[][] = [[]];
  for (const s of seqs) {
    const w = s.weight;
    if (!(w > 0)) continue;
    tWeight[0] += w;
    let node = 0;
    let wd = w;
    const dec = s.decay ?? decay;
    const len = maxDepth > 0 ? Math.min(maxDepth, s.tokens.length) : s.tokens.length;
    for (let i = 0; i < len; i++) {
      if (i > 0) wd *= dec;
      const tok = s.tokens[i];
      let next = -1;
      for (const c of tChildren[node]) if (tToken[c] === tok) { next = c; break; }
      if (next < 0) {
        next = tToken.length;
        tToken.push(tok);
        tDepth.push(tDepth[node] + 1);
        tWeight.push(0);
        tChildren.push([]);
        tChildren[node].push(next);
      }
      tWeight[next] += wd;
      node = next;
    }
  }
  return bestFirst(
    {
      token: (id) => tToken[id],
      depth: (id) => tDepth[id],
      weight: (id) => tWeight[id],
      children: (id, visit) => {
        for (const c of tChildren[id]) visit(c);
      },
    },
    root,
    tWeight[0],
    budget,
    (a, b) => tWeight[a] > tWeight[b] || (tWeight[a] === tWeight[b] && (tDepth[a] < tDepth[b] || (tDepth[a] === tDepth[b] && a < b))),
    (id) => !(tWeight[id] < minWeight),
  );
}

/**
 * Cost-aware tree size (adaptive drafting). `weights[i]` is node i's estimated probability of
 * being accepted (root first, best-first order, so every prefix is a valid tree). A round with n
 * nodes emits 1 + sum(weights[1..n)) tokens on average and costs about R + (n - 1) node-units,
 * where R = (fixed cost of a round: draft + a one-token verify) / (marginal cost of one more node).
 * Returns the n in [1, weights.length] that maximizes expected tokens per unit of cost.
 */
export function bestTreeSize(weights: ArrayLike<number>, costRatio: number): number {
  let best = 1;
  let bestRate = 1 / costRatio;
  let sum = 1;
  for (let n = 2; n <= weights.length; n++) {
    sum += weights[n - 1];
    const rate = sum / (costRatio + n - 1);
    if (rate > bestRate) {
      bestRate = rate;
      best = n;
    }
  }
  return best;
}

/** The best-first prefix of `t` that bestTreeSize picks (the whole tree when costRatio is 0). */
export function costCut(t: WeightedTree, costRatio: number): TokenTree {
  return firstNodes(t, costRatio > 0 ? bestTreeSize(t.weights, costRatio) : t.tokens.length);
}
