"""The learned router's model: what it reads of a request, and the small network that scores it.

- `inputs`: the text the model embeds and the cheap request features it reads beside the
  embedding, both bounded in cost whatever the prompt's size.
- `model`: `LearnedModel`, a standardised input passed through a few dense layers to one raw
  score, calibrated to the probability that the strong model is needed (the strong-score);
  saved as JSON (numbers and names only: loading it runs no code).

Training lives in `fareway.evaluation.training` (`fareway train`); serving in
`fareway.routing.strategies.learned`. Both build a model's input with `inputs.model_input`, so
the served router sees exactly what the trained one saw.
"""
