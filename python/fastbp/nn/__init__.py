"""The network's parts: the ``Layer`` base and its layers (:mod:`~fastbp.nn.layers`), the
activations (:mod:`~fastbp.nn.activations`) and the losses (:mod:`~fastbp.nn.losses`).
``_layer_math`` holds the NumPy formulas of normalisation, dropout and the bfloat16
products that the layers and :mod:`fastbp.reference` share."""
