from domain.generation.aggregate import Generation

__all__ = ["Generation"]
