from transferlab.cli import study

if __name__ == "__main__":
    study()
