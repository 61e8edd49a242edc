"""``python -m kilnflow`` is the ``kilnflow`` command."""

from kilnflow.cli import main

if __name__ == "__main__":
    main()
