"""What a plan looks like to a reader: terminal text (:mod:`.text`), charts (:mod:`.plots`,
:mod:`.sweep_plots`), one self-contained HTML page (:mod:`.html`, with :mod:`.sections` and
:mod:`.vega`). The tables themselves and their writers live with the plan (:mod:`optimizer.plan`).

Nothing is imported here: the chart modules load matplotlib, which a plain solve does not need.
"""
