"""The floor of `make bench`: a bare Flask app answering "hello", served as the app is."""

from flask import Flask

app = Flask(__name__)


@app.get("/")
def hello() -> str:
    return "hello"
