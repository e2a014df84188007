"""`python -m local_stack {emulators,exec,demo,doctor,seed-export,env}`."""

from local_stack.cli import main

if __name__ == "__main__":
    main()
