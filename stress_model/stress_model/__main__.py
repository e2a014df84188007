from stress_model.cli import app

app(prog_name="python -m stress_model")
