"""A Space runs this file (``python app.py``): hf_lpselect's Gradio app, from the package beside it."""

from hf_lpselect.space.app import demo, main  # noqa: F401 (`demo` is what gradio's reload mode looks for)


if __name__ == "__main__":
    main()
