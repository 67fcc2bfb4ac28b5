// Eight short prompt/completion rows: enough for a 2-step run of the 260K-parameter fixture model.
export const TINY_ROWS: readonly (readonly [prompt: string, completion: string])[] = [
  ['Once upon a time', ' there was a cat.'],
  ['The dog', ' ran to the park.'],
  ['Lily liked', ' to play in the sun.'],
  ['Tom had a', ' big red ball.'],
  ['One day, the bird', ' flew over the tree.'],
  ['The girl saw', ' a little fish.'],
  ['Mom said', ' it was time to eat.'],
  ['They were', ' happy and had fun.'],
];
