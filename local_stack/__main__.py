"""`python -m local_stack {emulators,exec,demo,seed-export}`."""

from local_stack.cli import main

if __name__ == "__main__":
    main()
