"""The `videogan` command: one subcommand per pipeline step, plus `sample`."""

import typer

from videogan.training.commands import sample, train

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Train and evaluate a video GAN (LSTM + DCGAN generator, VGAN critic, WGAN-GP).")
app.command()(train)
app.command()(sample)

if __name__ == "__main__":
    app()
