import torch

from videogan.losses import critic_loss, generator_loss, gradient_penalty, r1_penalty


def test_penalty_of_a_linear_critic_is_known():
    w = torch.randn(1, 2, 3, 4, 4)

    def critic(x):
        return (x * w).flatten(1).sum(1)  # gradient w everywhere

    real, fake = torch.randn(5, 2, 3, 4, 4), torch.randn(5, 2, 3, 4, 4)
    penalty = gradient_penalty(critic, real, fake, torch.rand(5))
    torch.testing.assert_close(penalty, (w.norm() - 1) ** 2)


def test_penalty_of_a_quadratic_critic_is_taken_at_the_interpolates():
    def critic(x):
        return 0.5 * (x**2).flatten(1).sum(1)  # gradient x

    real, fake = torch.randn(6, 1, 8, 4, 4), torch.randn(6, 1, 8, 4, 4)
    eps = torch.rand(6)
    mixed = eps.view(-1, 1, 1, 1, 1) * real + (1 - eps.view(-1, 1, 1, 1, 1)) * fake
    expected = ((mixed.flatten(1).norm(dim=1) - 1) ** 2).mean()
    torch.testing.assert_close(gradient_penalty(critic, real, fake, eps), expected)


def test_penalty_is_differentiable_in_the_critic_weights():
    w = torch.randn(1, 1, 8, 4, 4, requires_grad=True)

    def critic(x):
        return (x * w).flatten(1).sum(1)

    gradient_penalty(critic, torch.randn(3, 1, 8, 4, 4), torch.randn(3, 1, 8, 4, 4), torch.rand(3)).backward()
    torch.testing.assert_close(w.grad, 2 * (w.norm() - 1) * w / w.norm())


def test_generator_losses():
    s = torch.tensor([0.0])
    assert generator_loss("wgan-gp", torch.tensor([2.0])) == -2.0
    torch.testing.assert_close(generator_loss("basic", s), -torch.log(torch.tensor(2.0)))  # log(1 - 1/2)
    torch.testing.assert_close(generator_loss("alternative", s), torch.log(torch.tensor(2.0)))  # -log(1/2)


def test_r1_is_the_squared_gradient_norm_at_the_reals_and_returns_their_scores():
    w = torch.randn(1, 1, 8, 4, 4, requires_grad=True)

    def critic(x):
        return 0.5 * ((x * w) ** 2).flatten(1).sum(1)  # gradient w^2 x

    real = torch.randn(3, 1, 8, 4, 4)
    scores, penalty = r1_penalty(critic, real)
    torch.testing.assert_close(scores, critic(real))
    torch.testing.assert_close(penalty, ((w**2 * real) ** 2).flatten(1).sum(1).mean())
    penalty.backward()  # differentiable in the critic's weights
    assert w.grad is not None and w.grad.abs().sum() > 0


def test_hinge_and_non_saturating_losses():
    real, fake = torch.tensor([2.0, 0.5]), torch.tensor([-2.0, 0.0])
    torch.testing.assert_close(critic_loss("hinge", real, fake), torch.tensor((0 + 0.5) / 2 + (0 + 1) / 2))
    assert generator_loss("hinge", torch.tensor([2.0])) == -2.0
    log2 = torch.log(torch.tensor(2.0))
    torch.testing.assert_close(critic_loss("non-saturating", torch.zeros(2), torch.zeros(2)), 2 * log2)
    torch.testing.assert_close(generator_loss("non-saturating", torch.zeros(1)), log2)
