from transferlab.cli import evaluate

if __name__ == "__main__":
    evaluate()
