"""The evaluation suite: the paper's comparisons measured with this engine (``gi bench``).

* :mod:`.classic` — JPEG, JPEG 2000, WebP, AVIF, JPEG XL behind one interface;
* :mod:`.bdrate` — quality at a rate and Bjøntegaard delta rate;
* :mod:`.rd` — rate-distortion points from real files, summary and plot.
"""
