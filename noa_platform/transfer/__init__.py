"""Transfer between domains: what a source domain's tokenizer and MNO carry over to a target
domain (``noa transfer``, docs/transfer.md).

Modules: :mod:`.layers` (which MNO layers a target-shaped model keeps), :mod:`.mno`
(fine-tuned against scratch on k target samples), :mod:`.tokenizer` (the source tokenizer
reading target features), :mod:`.experiment` (the whole experiment and its result),
:mod:`.sources` (resolving domains to registered artifacts), :mod:`.plots` (the curve).
"""
