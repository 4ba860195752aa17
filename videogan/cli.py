"""The `videogan` command: one subcommand per pipeline step, plus `sample`."""

import typer

from videogan.data.commands import download, preprocess
from videogan.metrics.commands import evaluate, fit_evaluator, render
from videogan.training.commands import sample, train

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Train and evaluate a video GAN (LSTM + DCGAN generator, VGAN critic, WGAN-GP).",
)
app.command()(download)
app.command()(preprocess)
app.command("fit-evaluator")(fit_evaluator)
app.command()(train)
app.command()(evaluate)
app.command()(render)
app.command()(sample)

if __name__ == "__main__":
    app()
